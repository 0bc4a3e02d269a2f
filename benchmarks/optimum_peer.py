"""The peer: Hugging Face optimum's own pipeline on the same model, in its own venv.

Runs inside benchmarks/.venv-optimum (transformers 4.57.6, optimum 2.1.0,
optimum-onnx 0.1.0): optimum cannot sit beside edgec's transformers 5.x.

    benchmarks/.venv-optimum/bin/python benchmarks/optimum_peer.py MODEL_DIR OUT_DIR

1. `optimum-cli export onnx --task text-classification` (optimum's exporter and graph);
2. `ORTQuantizer` + `AutoQuantizationConfig.avx2(is_static=False)` and
   `AutoQuantizationConfig.avx512_vnni(is_static=False)`: dynamic int8, as optimum's
   docs recommend for CPU.

It only writes model files and prints a JSON summary; edgec's harness times them,
so both sides are measured by the same code in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main(model_dir: str, out_dir: str) -> dict:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    out = Path(out_dir)
    export_dir = out / "export"
    started = time.perf_counter()
    if not (export_dir / "model.onnx").is_file():
        cli = Path(sys.executable).with_name("optimum-cli")
        subprocess.run(
            [
                str(cli),
                "export",
                "onnx",
                "--model",
                model_dir,
                "--task",
                "text-classification",
                str(export_dir),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    export_seconds = time.perf_counter() - started

    import optimum.onnxruntime as ort_opt
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    files = {"fp32": str(export_dir / "model.onnx")}
    seconds = {"export": round(export_seconds, 1)}
    for name in ("avx2", "avx512_vnni"):
        qdir = out / f"int8-{name}"
        target = qdir / "model_quantized.onnx"
        started = time.perf_counter()
        if not target.is_file():
            config = getattr(AutoQuantizationConfig, name)(is_static=False)
            quantizer = ORTQuantizer.from_pretrained(export_dir, file_name="model.onnx")
            quantizer.quantize(save_dir=qdir, quantization_config=config)
        files[f"int8-{name}"] = str(target)
        seconds[f"quantize-{name}"] = round(time.perf_counter() - started, 1)
    import importlib.metadata as md

    return {
        "files": files,
        "seconds": seconds,
        "versions": {
            p: md.version(p)
            for p in ("optimum", "optimum-onnx", "transformers", "onnxruntime", "torch")
        },
        "module": ort_opt.__name__,
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: optimum_peer.py MODEL_DIR OUT_DIR")
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
