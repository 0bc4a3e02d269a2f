"""The PyTorch baseline under another OpenMP wait policy, in a worker process.

libgomp reads OMP_WAIT_POLICY once, when torch first loads it, so one process times
PyTorch under one policy. For another, `worker_subjects` starts

    python -m edgec.bench.torch_worker MODEL --threads N [--padded]

with that policy in its environment. The worker loads the same model through the same
`pytorch_subjects` and answers one JSON line per request on stdin/stdout. To time, the
parent sends the shape's data once (the same text batches or synthetic feed its own
subjects get); then for each round of `edgec.timing.interleaved` it asks for its share
of calls, and the worker runs them through the same `subject_call` and the same timing
loop (`timed_calls`) and sends the times back. So the figure is the call itself, with
the same inputs, batch and count per round as a subject in the parent, and the worker's
turn stays in its place among the other subjects' turns.

A worker whose threads spin (libgomp's default spins a few ms of CPU after each
parallel region, longer in wall time on a contended CPU) waits after its share until
no other thread of it is running (`settle`) before answering, so its spinning ends
before the next subject's turn starts. It runs in a session of its own, so that where
the kernel shares the CPU between sessions (autogroup) its spinning is not charged to
the parent's. Checked on a contended 2-core machine (benchmarks/NOTES.md 2): PASSIVE in
the parent and PASSIVE in a worker time alike; the subject timed right after a
spinning worker still ran 1.1-1.25x slower there, so the parent times the worker's
subjects after its own PyTorch ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from edgec import machine

WORKER_MODULE = "edgec.bench.torch_worker"
WORKER_TIMEOUT = 900  # seconds one request (loading the model, a round) may take
SETTLE_LIMIT = 2.0  # seconds a worker waits at most for its threads to go quiet


def worker_env(policy: str) -> dict:
    """This process's environment with OMP_WAIT_POLICY set to `policy` ("default": unset)."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    env["PYTHONWARNINGS"] = "ignore"
    return env


class TorchWorker:
    """The parent's end of one worker process: requests out, answers in."""

    def __init__(self, model_path: str | Path, threads: int, padded: bool, policy: str):
        self.policy = policy
        argv = [sys.executable, "-m", WORKER_MODULE, str(model_path), "--threads", str(threads)]
        # stderr to a file: a chatty worker must not block on a full pipe
        self._err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            argv + (["--padded"] if padded else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env=worker_env(policy),
            # its own session: where the kernel shares the CPU fairly between sessions
            # (autogroup), the worker's spinning is charged to it, not to this process's
            # session, which would then be owed less during the next subject's turn
            start_new_session=True,
        )
        machine.HELPER_PIDS.add(self._proc.pid)  # its CPU is ours, not "others'"
        self._keys = 0
        self._users = 0
        try:
            self.ready = self._answer()  # {"policy", "pid", "subjects": [describe()...]}
        except BaseException:
            self.close()
            raise

    def request(self, op: str, **fields) -> dict:
        if self._proc.poll() is not None:
            raise RuntimeError(f"the PyTorch worker ({self.policy}) has exited: {self._tail()}")
        self._proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self._proc.stdin.flush()
        return self._answer()

    def _answer(self) -> dict:
        watchdog = threading.Timer(WORKER_TIMEOUT, self._proc.kill)
        watchdog.start()
        try:
            line = self._proc.stdout.readline()
        finally:
            watchdog.cancel()
        if not line.strip():
            self._proc.wait()
            raise RuntimeError(
                f"the PyTorch worker (OMP_WAIT_POLICY {self.policy}) gave no answer "
                f"(exit {self._proc.returncode}): {self._tail()}"
            )
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the PyTorch worker (OMP {self.policy}): {answer['error']}")
        return answer

    def _tail(self) -> str:
        self._err.seek(0)
        return (self._err.read().strip().splitlines() or ["no output"])[-1]

    def timer(self, name: str):
        """Subject.timer for the worker's subject `name`."""

        def make(mode: str, data) -> RemoteCall:
            self._keys += 1
            self.request("data", key=self._keys, mode=mode, data=_encode(mode, data))
            return RemoteCall(self, name, self._keys)

        return make

    def acquire(self) -> None:
        self._users += 1

    def release(self) -> None:
        """One subject fewer; the process ends with the last."""
        self._users -= 1
        if self._users <= 0:
            self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        machine.HELPER_PIDS.discard(self._proc.pid)  # reaped: now in os.times() children
        self._err.close()


class RemoteCall:
    """What `interleaved` times for a worker's subject: `timed(indices)` runs that share
    of a round in the worker and returns its times; calling it runs one, time dropped."""

    def __init__(self, worker: TorchWorker, subject: str, key: int):
        self.worker, self.subject, self.key = worker, subject, key

    def timed(self, indices: range) -> list[float]:
        answer = self.worker.request(
            "time", subject=self.subject, key=self.key, start=indices.start, stop=indices.stop
        )
        return answer["ms"]

    def __call__(self, i: int) -> None:
        self.timed(range(i, i + 1))


def worker_subjects(model_path: str | Path, threads: int | None, padded: bool, policy: str):
    """The PyTorch baselines of `model_path` under `policy`, timed in a new worker."""
    import numpy as np

    from edgec.bench.cold import child_argv
    from edgec.bench.subjects import Subject
    from edgec.machine import cores

    worker = TorchWorker(model_path, threads or cores(), padded, policy)
    subjects = []
    for d in worker.ready["subjects"]:
        name = d["name"]

        def predict(texts, name=name):
            answer = worker.request("predict", subject=name, texts=list(texts))
            return [np.asarray(v) for v in answer["out"]] if answer["arrays"] else answer["out"]

        def model(inputs, name=name):
            answer = worker.request("model", subject=name, data=_encode("model", inputs))
            return np.asarray(answer["out"])

        worker.acquire()
        subjects.append(
            Subject(
                name=name,
                kind="pytorch",
                backend="pytorch",
                precision="fp32",
                path=str(model_path),
                model=model,
                predict=predict,
                cold=child_argv("pytorch", model_path, threads),
                size_bytes=d["size_bytes"],
                extra={
                    **{k: d[k] for k in ("max_length", "vocab_size", "baseline", "torch_threads")},
                    "omp_wait_policy": worker.ready["policy"],  # as the worker read it
                    "process": f"worker {worker.ready['pid']}",
                },
                close=worker.release,
                timer=worker.timer(name),
            )
        )
    return subjects


def _encode(mode: str, data):
    """A shape's data as JSON: text batches as they are, a feed's arrays as lists."""
    if mode == "predict":
        return data
    return {n: {"values": v.tolist(), "dtype": str(v.dtype)} for n, v in data.items()}


def _decode(mode: str, data):
    import numpy as np

    if mode == "predict":
        return data
    return {n: np.asarray(v["values"], dtype=v["dtype"]) for n, v in data.items()}


def settle(step: float = 0.002, limit: float = SETTLE_LIMIT) -> float:
    """Wait until this process's other threads have stopped running (a spinning OpenMP
    pool has gone to sleep; on a busy CPU a spinning thread waits its turn to spin, so
    this is read from the threads' states, not from CPU time), for at most `limit`
    seconds; returns the seconds waited. Without /proc, waits for 3 steps without CPU."""
    started = time.perf_counter()
    quiet, last = 0, time.process_time()
    while time.perf_counter() - started < limit and quiet < 3:
        running = _other_threads_running()
        if running is None:  # no /proc: this process's CPU time, every thread's
            now = time.process_time()
            running, last = now - last > 0.05 * step, now
        quiet = 0 if running else quiet + 1
        time.sleep(step)
    return time.perf_counter() - started


def _other_threads_running() -> bool | None:
    """Whether a thread of this process besides the caller is running or runnable (R)."""
    me = threading.get_native_id()
    try:
        tasks = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return None
    for task in tasks:
        if task != me:
            try:
                with open(f"/proc/self/task/{task}/stat", encoding="ascii") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "R":
                        return True
            except (OSError, IndexError):
                continue  # the thread ended
    return False


def serve(model_path: str, threads: int, padded: bool, channel, requests) -> None:
    """The worker's loop: load, say ready, answer each request line until "exit"."""
    import numpy as np

    from edgec.bench.run import subject_call
    from edgec.bench.subjects import omp_policy, pytorch_subjects
    from edgec.timing import timed_calls

    def send(obj) -> None:
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    policy = omp_policy()
    subjects = {s.name: s for s in pytorch_subjects(model_path, threads, padded)}
    send(
        {
            "policy": policy,
            "pid": os.getpid(),
            "subjects": [{**s.describe(), "size_bytes": s.size_bytes} for s in subjects.values()],
        }
    )
    calls: dict[int, tuple[str, object]] = {}
    for line in requests:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "exit":
                break
            if op == "data":
                calls[req["key"]] = (req["mode"], _decode(req["mode"], req["data"]))
                send({"ok": True})
            elif op == "time":
                mode, data = calls[req["key"]]
                call = subject_call(subjects[req["subject"]], mode, data)
                ms = timed_calls(call, range(req["start"], req["stop"]))
                settle()
                send({"ms": ms})
            elif op == "predict":  # labels, or an embedding (array) per text
                out = subjects[req["subject"]].predict(req["texts"])
                arrays = any(isinstance(v, np.ndarray) for v in out)
                send(
                    {
                        "out": [np.asarray(v).tolist() if arrays else v for v in out],
                        "arrays": arrays,
                    }
                )
            elif op == "model":
                out = subjects[req["subject"]].model(_decode("model", req["data"]))
                send({"out": np.asarray(out).tolist()})
            else:
                send({"error": f"unknown request {op!r}"})
        except Exception as e:  # the parent raises it, with the worker's message
            send({"error": f"{type(e).__name__}: {e}"})


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the model folder")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--padded", action="store_true", help="the padded baseline too")
    args = parser.parse_args(argv)
    # stdout is the channel; whatever a library prints goes to stderr instead
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    from edgec.quiet import quiet_libraries

    quiet_libraries()
    serve(args.model, args.threads, args.padded, channel, sys.stdin)


if __name__ == "__main__":
    main()
