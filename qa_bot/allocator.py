"""Process-wide settings of the C memory allocator, for fast questions over a large index.

A question over a million passages makes several temporaries of 4-8 MB (BM25 scores of every
passage, their ranking). glibc maps each such block from the system afresh and unmaps it when it is
freed, so every question pays a page fault for each of their 4 KiB pages; on a virtual machine those
faults cost more than the arithmetic. Keeping freed blocks for reuse took the warm question at 1M
passages from 42.5 ms to 27.0 ms p50 (`scripts/scale_benchmark.py`; see README).
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # blocks below this come from the heap (glibc's largest allowed value)
TRIM_THRESHOLD = 128 << 20  # free memory the heap keeps instead of returning it to the system


def reuse_freed_memory() -> bool:
    """Serve blocks up to 32 MiB from the heap and keep up to 128 MiB of freed memory for reuse.
    Returns whether the allocator took the settings (glibc does; elsewhere nothing changes)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) \
        and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
