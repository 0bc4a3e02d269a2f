"""Keep library chatter (tracer warnings, loading bars, quantizer advice) off the
terminal unless the user asked for --verbose; edgec reports what matters itself."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings


def libraries_to_stderr() -> None:
    """Progress bars drawn by libraries (NNCF's, on rich's global console) go to stderr:
    stdout belongs to edgec's own output, which `--json` makes machine-read."""
    import rich

    rich.get_console().stderr = True


QUIET = False  # set by quiet_libraries: the user did not ask for --verbose


def tame_logger(name: str) -> None:
    """Some libraries (NNCF) install their own stdout handler and level when imported,
    after quiet_libraries ran: move it to stderr, and silence it unless --verbose."""
    import sys

    logger = logging.getLogger(name)
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.stdout,
            sys.__stdout__,
        ):
            handler.setStream(sys.stderr)
    if QUIET:
        logger.setLevel(logging.ERROR)


def quiet_libraries() -> None:
    global QUIET
    QUIET = True
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("onnxruntime", "transformers", "nncf", "openvino", "datasets", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import rich

    rich.get_console().quiet = True  # NNCF's calibration bars; edgec's own consoles stay


@contextlib.contextmanager
def prints_to_stderr():
    """Around a library call that print()s its progress (ONNX Runtime's histogram
    calibration): the lines go to stderr with --verbose and nowhere otherwise, never to
    stdout, which `--json` keeps for one JSON document."""
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(open(os.devnull, "w")) if QUIET else sys.stderr
        stack.enter_context(contextlib.redirect_stdout(target))
        yield
