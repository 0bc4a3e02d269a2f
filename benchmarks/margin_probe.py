"""Probe: int8-auto's `search_margin` on the real models (issue 14).

The search gates its trials on the validation split with each allowance scaled by the
margin (0.5: half the accuracy drop), so the result keeps room for the eval set's own
gates. On the full sentiment teacher the default left plain dynamic int8 in place and
it lost 0.62 points on the test split, over the issue's 0.5. This builds each named
(model, margin) with `--precision int8-auto` exactly as benchmarks/int8_models.py does
(calibration: 256 training examples; validation split; gated on the test split) and
records the test-split quality, what the search kept in float, what that cost in its
own timing, and its trials and seconds; or the search's refusal when no graph passed.

    .venv/bin/python benchmarks/margin_probe.py --runs sentiment:0.5,sentiment:0.25,ner:0.25

Writes benchmarks/margin_probe.json. A probe, not part of `make bench`: a margin that
held on every real model would become the default (none did: NOTES.md, section 11).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import int8_models  # noqa: E402  (benchmarks/, on the path above)

RESULTS = HERE / "margin_probe.json"


def probe(entry: dict, margin: str, folder: Path) -> dict:
    """One int8-auto build at `margin`: its figures, or the search's refusal."""
    from edgec.pipeline import build
    from edgec_runtime.errors import VerificationFailed

    output = folder / f"{entry['name']}-{margin}"
    request = int8_models.build_request(entry, "int8-auto", output, {"search_margin": margin})
    row = {"model": entry["name"], "margin": float(margin)}
    try:
        manifest = build(request)
    except VerificationFailed as refused:
        return {**row, "refused": str(refused)}
    search = manifest["backend"]["search"]
    picked = next(r for r in search["results"] if r["precision"] == search["picked"])
    return {
        **row,
        "test": int8_models.quality(manifest),
        "picked": search["picked"],
        "kept_float": picked["options"].get("keep_float", []),
        "p50_ms": picked.get("p50_ms"),
        "float_cost_ms": picked.get("float_cost_ms", {}),
        "validation": picked.get("validation"),
        "trials": search["trials"],
        "search_seconds": search["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="sentiment:0.5,sentiment:0.25,ner:0.25",
                        help="MODEL:MARGIN pairs; models: sentiment, reviews, ner")  # fmt: skip
    args = parser.parse_args()
    from edgec.machine import describe_machine

    models = {m["name"]: m for m in int8_models.real_models()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in args.runs.split(","):
            name, margin = pair.split(":")
            rows.append(probe(models[name], margin, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    RESULTS.write_text(json.dumps({"machine": describe_machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
