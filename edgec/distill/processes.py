"""Distillation on several processes: data parallel through the Trainer's own engine
(accelerate and torch DDP), started by torch's own launcher.

Under `torchrun` (or `accelerate launch`) every process runs `edgec distill` unchanged:
the launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR) makes the
Trainer split each global batch across the processes and average their gradients
(gloo on the CPU, NCCL on GPUs). Rank 0 alone writes the student, the report and
the terminal output; the other ranks train and keep quiet.

`edgec distill --processes N` is `torchrun --standalone --nproc-per-node N -m edgec
distill ...` run for you: `launch` calls torch.distributed.run in this process and
turns a worker's error back into edgec's one line and exit code (each worker writes
its error to a file of the launch's `ERRORS_DIR` instead of printing it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from edgec_runtime.errors import BadInput, EdgecError

ERRORS_DIR = "EDGEC_DISTILL_ERRORS"  # set by `launch` in its workers' environment
LINGER_SECONDS = 3.0


class ProcessesFailed(Exception):
    """A launched process failed without an edgec error (killed, or a bug it reported
    itself): the exit code for the launcher, and what to say, if anything."""

    def __init__(self, exit_code: int, message: str = ""):
        super().__init__(message)
        self.exit_code = exit_code


def cores() -> int:
    """The CPU cores this process may run on (its affinity, as a container limits it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes outputs and reports."""
    return rank() == 0


def launched_by_edgec() -> bool:
    return bool(os.environ.get(ERRORS_DIR))


def local_device(device: str) -> str:
    """This process's device: each rank on CUDA takes the GPU of its local rank."""
    if device == "cuda" and world_size() > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def check_processes(n: int, device: str) -> None:
    """Refuse a --processes request before anything is launched."""
    if n < 1:
        raise BadInput(f"--processes {n}: give 1 or more training processes")
    if n > 1 and world_size() > 1 and not launched_by_edgec():
        raise BadInput(
            f"--processes {n}: this is already one of {world_size()} processes started by a "
            "launcher (torchrun, accelerate launch); drop --processes"
        )
    if n > 1 and device == "cuda":
        raise BadInput(
            "--processes starts CPU processes (gloo); on GPUs start one process per GPU with "
            "torchrun --nproc-per-node N -m edgec distill ..."
        )
    available = cores()
    if n > available:
        raise BadInput(
            f"--processes {n}: this machine gives {available} CPU cores to edgec; "
            f"use at most --processes {available}"
        )


def launch(n: int, argv: list[str], verbose: bool = False) -> None:
    """Run `python -m edgec distill *argv` as `n` processes through torch.distributed.run
    (standalone rendezvous on localhost, one thread per core each) and wait for them.

    A worker's EdgecError comes back as the same one-line error and exit code; an
    interruption (Ctrl-C, SIGTERM) stops every worker and is a KeyboardInterrupt here.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if not verbose:
        _quiet_launcher_logs()
    scratch = Path(tempfile.mkdtemp(prefix="edgec-distill-"))
    errors = scratch / "errors"
    errors.mkdir()
    saved = {k: os.environ.get(k) for k in (ERRORS_DIR, "OMP_NUM_THREADS")}
    os.environ[ERRORS_DIR] = str(errors)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores() // n)))
    launcher = [
        "--standalone",
        f"--nproc-per-node={n}",
        f"--log-dir={scratch / 'logs'}",
        "-m",
        "edgec",
        "distill",
        *argv,
        *(["--verbose"] if verbose else []),
    ]
    try:
        run(parse_args(launcher))
    except SignalException as e:
        raise KeyboardInterrupt(signal.Signals(e.sigval).name) from None
    except ChildFailedError as e:
        reported = worker_error(errors)
        if reported is not None:
            raise reported from None
        # the launcher stops the other processes when the first one fails: that one says why
        first, failure = e.get_first_failure()
        code = failure.exitcode
        if code == 130:
            raise KeyboardInterrupt("a training process was interrupted") from None
        if code < 0:
            name = signal.Signals(-code).name
            raise ProcessesFailed(
                128 - code,
                f"training process {first} of {n} was killed by {name}; the checkpoints "
                "written so far remain: continue with --resume",
            ) from None
        raise ProcessesFailed(code) from None  # it printed its own line (or traceback)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)


def _quiet_launcher_logs() -> None:
    """The launcher logs each failed worker and each signal it forwards; edgec says it
    in one line instead (its loggers set their own levels, so each one is set here)."""
    import torch.distributed.elastic.multiprocessing.api  # noqa: F401  (creates the loggers)
    import torch.distributed.run  # noqa: F401

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def write_error(error: EdgecError) -> bool:
    """In a worker of `launch`: leave the error for the launcher to print; True when
    written (the worker then exits with its code and prints nothing)."""
    folder = os.environ.get(ERRORS_DIR)
    if not folder:
        return False
    record = {"message": str(error), "exit_code": error.exit_code}
    path = Path(folder) / f"rank-{rank()}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    return True


def settle_error(error: EdgecError) -> bool:
    """What a process does with a user error: False for rank 0 alone (the CLI prints
    it, as in one process); True for the rest, which exit with its code.

    Under `launch` the error goes to the launcher (`write_error`). Under torchrun every
    rank meets the same mistake, and the launcher stops the others at the first exit:
    the other ranks wait a moment for rank 0 to print it, and print it themselves only
    if they are still running then."""
    if write_error(error):
        return True
    if is_main():
        return False
    try:
        time.sleep(LINGER_SECONDS)
    except KeyboardInterrupt:
        return True
    print(f"error (rank {rank()}): {error}", file=sys.stderr)
    return True


def worker_error(folder: Path) -> EdgecError | None:
    """The error of the lowest rank that wrote one, as the EdgecError to raise here."""
    for path in sorted(folder.glob("rank-*.json"), key=lambda p: int(p.stem.split("-")[1])):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        error = EdgecError(record["message"])
        error.exit_code = int(record["exit_code"])
        return error
    return None


def barrier() -> None:
    """Wait for every process (nothing to wait for in a single one)."""
    import torch.distributed as dist

    if world_size() > 1 and dist.is_available() and dist.is_initialized():
        dist.barrier()
