"""Hand the C heap's free pages back to the system once a written batch's Python objects are gone.

A batch's larger objects (attribute dicts, message content: anything over 512 bytes) come from the C
library's malloc, in arenas per thread. When the batch is freed, glibc keeps those pages for reuse
unless they are at the very top of an arena, so the process's RSS stays near its highest point and
the next batches, the Arrow conversion and the engine's inserts stack on top of it. malloc_trim(0)
returns every whole free page of every arena (about a millisecond); in bench/ingest.py this lowered
the peak RSS by 25-50 MiB. pyarrow's pool and the embedded engine have allocators of their own, purged
by Store.release_memory.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where there is none (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the symbols this process already has: libc's own
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _find_malloc_trim()


def release_freed_heap() -> bool:
    """Return the C heap's free pages to the system; False where the C library cannot."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
