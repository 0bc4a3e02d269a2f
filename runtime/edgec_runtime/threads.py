"""How many threads a runner may use: the cores this process may run on."""

from __future__ import annotations

import os


def cores() -> int:
    """The process's affinity mask, which on a shared or containerised machine is fewer
    than os.cpu_count()."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def intra_op_threads(threads: int) -> int:
    """Threads for one inference; 0 means every core the process may use. More than
    that (a target profile written for a bigger device) is cut to it: extra threads
    only fight over the same cores."""
    threads = int(threads or 0)
    return min(threads, cores()) if threads > 0 else cores()
