"""The machine a benchmark ran on, and how busy it was while it ran.

A latency means little without the CPU that produced it, and on a shared machine even
less without knowing who else was using that CPU. `CpuLoad` samples `/proc/stat` and
this process's own CPU time at the start and end of a measurement, so the report can
say what share of the CPU was busy, how much of that was someone else, and how much
the hypervisor stole.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

from edgec_runtime.threads import cores

ISA_OF_INTEREST = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimddp",
    "i8mm",
)
# Above these shares of the whole CPU during a run, other work visibly skews latencies.
CONTENDED_OTHERS = 0.15
CONTENDED_STEAL = 0.05


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """ISA flags from /proc/cpuinfo (cheap); py-cpuinfo elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import cpuinfo

    return set(cpuinfo.get_cpu_info().get("flags", []))


def host_isa() -> dict:
    flags = cpu_flags()
    machine = platform.machine().lower()
    return {
        "machine": machine,
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
        "amx": "amx_int8" in flags,
        "bf16": bool({"avx512_bf16", "amx_bf16"} & flags),
        "dotprod": "asimddp" in flags,
        "cores": cores(),
    }


def describe_machine() -> dict:
    flags = cpu_flags()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "isa": [f for f in ISA_OF_INTEREST if f in flags],
        "cores": cores(),
        "logical_cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in load] if load else None,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def read_proc_stat() -> list[int] | None:
    """The aggregate `cpu` line of /proc/stat, in clock ticks; None off Linux."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    return [int(x) for x in fields[1:]]


# Live child processes whose CPU time is this process's work (edgec bench's PyTorch
# worker): counted as our own, so CpuLoad.others stays the other processes' share.
HELPER_PIDS: set[int] = set()


def _cpu_seconds_of(pid: int) -> float:
    """utime + stime of a live process from /proc/PID/stat; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # from field 3, state, on
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _own_cpu_seconds() -> float:
    """CPU time of this process, its finished children and its live helpers."""
    t = os.times()
    helpers = sum(_cpu_seconds_of(pid) for pid in HELPER_PIDS)
    return t.user + t.system + t.children_user + t.children_system + helpers


@dataclass
class CpuLoad:
    """Busy, steal and 'other processes' shares of all CPUs between start() and stop()."""

    busy: float | None = None
    steal: float | None = None
    others: float | None = None
    seconds: float = 0.0

    def start(self) -> CpuLoad:
        self._stat = read_proc_stat()
        self._own = _own_cpu_seconds()
        self._wall = time.perf_counter()
        return self

    def stop(self) -> CpuLoad:
        end = read_proc_stat()
        self.seconds = time.perf_counter() - self._wall
        if self._stat is None or end is None:
            return self
        delta = [b - a for a, b in zip(self._stat, end, strict=False)]
        total = sum(delta[:8])  # user nice system idle iowait irq softirq steal
        if total <= 0:
            return self
        idle = delta[3] + delta[4]
        steal = delta[7] if len(delta) > 7 else 0
        self.busy = (total - idle - steal) / total
        self.steal = steal / total
        # /proc/stat counts every CPU of the machine, not just our affinity mask.
        all_cpus = os.cpu_count() or 1
        own_share = (_own_cpu_seconds() - self._own) / max(self.seconds * all_cpus, 1e-9)
        self.others = max(0.0, self.busy - own_share)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def contended(self) -> bool:
        return (self.others or 0) > CONTENDED_OTHERS or (self.steal or 0) > CONTENDED_STEAL

    def as_dict(self) -> dict:
        def r(x):
            return None if x is None else round(x, 3)

        return {
            "busy": r(self.busy),
            "steal": r(self.steal),
            "others": r(self.others),
            "seconds": round(self.seconds, 2),
            "contended": self.contended(),
        }
