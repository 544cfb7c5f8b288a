"""Who listens on a TCP port, from /proc (Linux), so that worker processes share a port only among themselves.

SO_REUSEPORT lets any process of the same user bind a port that is already
bound with it, and grpcio turns it on by default: another gRPC server started
on the collector's port would silently take part of its connections. The
collector checks that every listening socket on its port belongs to one of
its own workers.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

LISTEN = "0A"


def listening_sockets(port: int) -> set[int]:
    """Inodes of the TCP sockets listening on `port`, any address."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def sockets_of(pid: int) -> set[int]:
    """Inodes of the sockets process `pid` has open."""
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def foreign_listeners(port: int, pids: list[int]) -> int:
    """How many sockets listen on `port` that none of `pids` holds."""
    ours: set[int] = set()
    for pid in pids:
        ours |= sockets_of(pid)
    return len(listening_sockets(port) - ours)


def claim_port(host: str, port: int) -> int:
    """Check that `host:port` is free (binding it without SO_REUSEPORT); port 0 picks a free one. Returns it."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "address in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from None
        return probe.getsockname()[1]
