"""After a batch is written, the C heap's free pages go back to the system (writer/heap.py)."""

from __future__ import annotations

import sys

import pytest
from spanhouse.collector.writer.heap import release_freed_heap

MIB = 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim: Linux only")
def test_freed_objects_pages_are_returned_not_kept_for_reuse() -> None:
    # Objects over 512 bytes, like a batch's attribute dicts and message content, come from malloc's heap;
    # the small ones kept between them (as a remembered span id outlives its batch) keep malloc from
    # giving the holes back on its own.
    pairs = [(b"x" * 16_000 + i.to_bytes(4, "little"), b"p" * 600 + i.to_bytes(4, "little")) for i in range(10_000)]
    kept_objects = [small for _, small in pairs]
    before = rss_bytes()
    del pairs
    freed = rss_bytes()
    assert freed > before - 20 * MIB  # malloc keeps the ~150 MiB freed in the holes
    assert release_freed_heap() is True
    assert rss_bytes() < freed - 100 * MIB
    assert len(kept_objects) == 10_000
