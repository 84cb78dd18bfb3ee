"""This process's resident memory, for the soak and streaming benchmarks (and their tests)."""

from __future__ import annotations

import resource


def rss_mb() -> float:
    """Resident set size now, in MiB (Linux: /proc/self/statm; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
