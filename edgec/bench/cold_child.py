"""The process `edgec bench` times for cold start: load, predict once, report, exit.

    python -m edgec.bench.cold_child package PATH [--threads N]
    python -m edgec.bench.cold_child pytorch MODEL [--threads N]

Everything it imports is part of what it measures, so the package mode imports only
the runtime (never torch), and the report's own imports come after the prediction.
It prints one JSON line: seconds on its own clock, whether torch got imported, and
its RSS and peak RSS in MB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

STARTED = time.perf_counter()
SENTENCE = "a gorgeous, witty, seductive movie."


def predict_with_package(path: str, threads: int | None) -> None:
    """What a device does: edgec.runtime loads the package and predicts."""
    import warnings

    warnings.simplefilter("ignore")
    from edgec_runtime import load

    load(path, threads=threads).predict([SENTENCE])


def predict_with_pytorch(model: str, threads: int | None) -> None:
    """The baseline: the source model in PyTorch, tokenized by transformers."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    if threads:
        torch.set_num_threads(threads)
    from edgec.heads import task_outputs
    from edgec.model import load_source_model

    source = load_source_model(model)
    enc = source.tokenizer([SENTENCE], return_tensors="pt")
    with torch.inference_mode():
        task_outputs(source.model, source.task, source.task_facts, dict(enc)).softmax(-1)


PREDICTORS = {"package": predict_with_package, "pytorch": predict_with_pytorch}


def peak_rss_mb() -> float:
    """VmHWM, not ru_maxrss: the latter can carry the parent's peak across fork+exec.
    /proc reports kB (KiB), so it is scaled to the same 1e6-byte MB as rss_mb."""
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def report() -> dict:
    import psutil

    return {
        "seconds": time.perf_counter() - STARTED,
        "torch_imported": "torch" in sys.modules,
        "rss_mb": psutil.Process().memory_info().rss / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=sorted(PREDICTORS))
    parser.add_argument("path", help="the package (package) or model folder (pytorch)")
    parser.add_argument("--threads", type=int, default=0, help="default: the runtime's")
    args = parser.parse_args(argv)
    PREDICTORS[args.mode](args.path, args.threads or None)
    print(json.dumps(report()), flush=True)


if __name__ == "__main__":
    main()
