"""Timing primitives shared by the build's candidate comparison and `edgec bench`.

Only ratios taken in one run are stable on a shared machine, so subjects are timed in
interleaved rounds: a burst of someone else's work slows every subject a little
instead of one subject a lot.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

PERCENTILES = (50, 90, 95, 99)
ROUNDS = 5


def text_batches(texts: list[str], batch: int, count: int, seed: int = 0) -> list[list[str]]:
    """`count` batches drawn at random from `texts`: the data's own length distribution."""
    rng = np.random.default_rng(seed)
    return [[texts[i] for i in rng.integers(0, len(texts), size=batch)] for _ in range(count)]


def summarize(ms: list[float] | np.ndarray, items_per_call: int) -> dict:
    a = np.asarray(ms, dtype=np.float64)
    stats = {f"p{p}": float(np.percentile(a, p)) for p in PERCENTILES}
    stats["mean"] = float(a.mean())
    stats["std"] = float(a.std())
    stats["min"] = float(a.min())
    stats["throughput"] = float(items_per_call * 1000.0 / a.mean())  # items per second
    stats["runs"] = len(a)
    return stats


def ratios(stats: dict, base: dict) -> dict:
    """Each figure divided by the baseline's; `speedup` is baseline p50 / this p50."""
    out = {
        k: stats[k] / base[k]
        for k in (*(f"p{p}" for p in PERCENTILES), "mean", "std", "throughput")
        if base.get(k)
    }
    out["speedup"] = base["p50"] / stats["p50"]
    return out


def interleaved(
    calls: dict[str, Callable[[int], object]], runs: int, warmup: int, rounds: int = ROUNDS
) -> dict[str, list[float]]:
    """Time `calls[name](i)` `runs` times each, in interleaved rounds; milliseconds.

    Every subject first gets `warmup` untimed calls; then each round times every
    subject in turn, so slow drifts in others' load spread over all subjects alike.
    A call with a `timed(indices)` method (one running in another process) is handed
    its whole share of a round at once, and reports the times it measured itself.
    """
    for call in calls.values():
        timed_calls(call, range(warmup))
    times: dict[str, list[float]] = {name: [] for name in calls}
    rounds = max(1, min(rounds, runs))
    per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    i = 0
    for n in per_round:
        for name, call in calls.items():
            times[name] += timed_calls(call, range(i, i + n))
        i += n
    return times


def timed_calls(call: Callable[[int], object], indices: range) -> list[float]:
    """Milliseconds of `call(i)` for each i in turn. A call that runs in another
    process (edgec.bench.torch_worker) has a `timed(indices)` that runs the same loop
    there, so what is timed is the call, not the pipe to it."""
    timed = getattr(call, "timed", None)
    if timed is not None:
        return list(timed(indices)) if len(indices) else []
    out = []
    for i in indices:
        t0 = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def sentence_latency(
    predicts: dict[str, Callable[[list[str]], object]], texts: list[str], runs: int = 20
) -> dict[str, float]:
    """Median ms of one sentence through tokenize + infer + postprocess, per subject,
    interleaved: the quick comparison `edgec build --backend a,b` uses to pick."""
    lots = text_batches(texts, 1, runs + ROUNDS + 4)
    calls = {name: (lambda i, f=f: f(lots[i % len(lots)])) for name, f in predicts.items()}
    times = interleaved(calls, runs, warmup=2)
    return {name: float(np.median(t)) for name, t in times.items()}
