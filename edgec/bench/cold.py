"""Cold start: a NEW process, timed from spawn until its first prediction.

A warm process hides what a device pays once per start (interpreter, imports, loading
the model), so each sample is a fresh `python -m edgec.bench.cold_child`. The child
reports whether torch got imported (the runtime must not) and its peak RSS; the
parent's clock is the one reported, since the child's starts after the interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

COLD_START_TIMEOUT = 120  # seconds a new process may take to its first prediction
CHILD_MODULE = "edgec.bench.cold_child"


def child_argv(mode: str, path: str | Path, threads: int | None = None) -> list[str]:
    """The argv of a child that loads `path` (`mode`: "package" or "pytorch"), makes
    one prediction and prints its report."""
    argv = [sys.executable, "-m", CHILD_MODULE, mode, str(path)]
    return argv + (["--threads", str(threads)] if threads else [])


def cold_start(argv: list[str], runs: int = 3) -> dict:
    """Spawn `argv` `runs` times; time from spawn until its first prediction is printed.

    The child's own clock starts after the interpreter is up, so the parent's clock is
    the one reported; disk caches are warm after the first run (reported separately).
    """
    import tempfile
    import threading

    samples, reports = [], []
    for _ in range(runs):
        # stderr goes to a file: a chatty child must not block on a full pipe, and a
        # child that hangs is killed rather than hanging the benchmark.
        with tempfile.TemporaryFile(mode="w+") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, text=True, env=_child_env()
            )
            watchdog = threading.Timer(COLD_START_TIMEOUT, proc.kill)
            watchdog.start()
            try:
                line = proc.stdout.readline()
                elapsed = time.perf_counter() - started
                proc.communicate()
            finally:
                watchdog.cancel()
            err.seek(0)
            message = (err.read().strip().splitlines() or ["no output"])[-1]
        if proc.returncode != 0 or not line.strip():
            if elapsed >= COLD_START_TIMEOUT:
                message = f"no prediction within {COLD_START_TIMEOUT} s"
            return {"error": message}
        samples.append(elapsed)
        reports.append(json.loads(line))
    last = reports[-1]
    return {
        "seconds": round(float(np.median(samples)), 3),
        "first_seconds": round(samples[0], 3),
        "runs": len(samples),
        "torch_imported": any(r["torch_imported"] for r in reports),
        "rss_mb": round(last["rss_mb"], 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in reports), 1),
    }


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TQDM_DISABLE", "1")
    env["PYTHONWARNINGS"] = "ignore"
    return env
