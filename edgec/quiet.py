"""Keep library chatter (tracer warnings, loading bars, quantizer advice) off the
terminal unless the user asked for --verbose; edgec reports what matters itself."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("onnxruntime", "transformers", "nncf", "openvino", "datasets", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
