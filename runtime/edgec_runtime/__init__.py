"""edgec-runtime: load an edgec package and predict with numpy, tokenizers and one
backend's inference engine (ONNX Runtime or OpenVINO); no torch, no transformers.

    from edgec_runtime import load
    with load("dist/sentiment") as model:
        model.predict(["a gripping, beautifully shot film"])
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(package, **kwargs):
    """`edgec_runtime.loading.load`; imported on call so `import edgec_runtime` stays
    cheap for the CLI's --help."""
    from edgec_runtime.loading import load as _load

    return _load(package, **kwargs)


__all__ = ["__version__", "load"]
