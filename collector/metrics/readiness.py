"""GET /ready: whether the collector can take spans now (GET /health only says the process answers).

Not ready while the store is closed, while the collector stops or its writer drains, or while the spool
is filled past its high-water mark: spans sent then are refused or soon will be, so a load balancer or
Kubernetes should send them to another collector.
"""

from __future__ import annotations

from typing import Any, Protocol

# Fraction of spool.max_size_mib past which the collector reports itself not ready. It still takes spans
# up to the full size; the margin lets a load balancer move traffic before clients see refusals.
SPOOL_HIGH_WATER = 0.9


class Watched(Protocol):
    store: Any
    spool: Any
    pipeline: Any

    @property
    def stopping(self) -> bool:
        ...


def readiness(collector: Watched) -> tuple[bool, str]:
    """(ready, a short reason a person reads)."""
    if collector.stopping:
        return False, "not ready: the collector is stopping"
    pipeline = collector.pipeline
    if pipeline is None:
        return False, "not ready: the collector is starting"
    if pipeline.writer.stopping:
        return False, "not ready: the writer is draining"
    store = collector.store
    if store is not None and store.closed:
        return False, "not ready: the store is closed"
    spool = collector.spool
    if spool is not None:
        used, limit = spool.bytes_used, spool.max_bytes
        if used >= SPOOL_HIGH_WATER * limit:
            return False, (f"not ready: the spool holds {used} of {limit} bytes (high-water mark "
                           f"{SPOOL_HIGH_WATER:.0%}); the store is not keeping up or is unreachable")
    return True, "ready"
