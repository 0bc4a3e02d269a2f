"""Where the libraries' own output goes while the example fine-tunes its teacher.

transformers reports in its own voice: a LOAD REPORT table in raw ANSI codes (the new
classification head is "MISSING" from the base model, as it should be), warnings, a
`{'loss': ...}` dict per log step and tqdm bars. The example shows one progress bar
instead (edgec's `TrainingProgress`), and `library_output` writes the rest, without
the colour codes, to a log file; with `verbose` it reaches the terminal as well.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

from transformers import TrainerCallback

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOGGER = "sentiment.training"


class PlainFormatter(logging.Formatter):
    """A log line without terminal colour codes (a log file is read in an editor)."""

    def format(self, record: logging.LogRecord) -> str:
        return ANSI.sub("", super().format(record))


class LogsToFile(TrainerCallback):
    """The Trainer's log dicts (loss, lr, grad norm, evaluations), one line each."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        logging.getLogger(LOGGER).info("step %d: %s", state.global_step, logs)


@contextlib.contextmanager
def library_output(log_file: Path, verbose: bool = False):
    """transformers' logging, Python warnings and the Trainer's logs go to `log_file`
    (overwritten: it is this run's); without `verbose`, nowhere else. Everything is
    put back on exit."""
    from transformers.utils import logging as hf_logging

    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    handler.setFormatter(PlainFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = [
        hf_logging.get_logger(),
        logging.getLogger("py.warnings"),
        logging.getLogger(LOGGER),
    ]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_warning()  # the LOAD REPORT is a warning
    logging.getLogger(LOGGER).setLevel(logging.INFO)
    logging.captureWarnings(True)
    for lg in loggers:
        lg.addHandler(handler)
    if not verbose:
        hf_logging.disable_default_handler()
        hf_logging.disable_progress_bar()  # loading and saving bars
        for lg in loggers[1:]:
            lg.propagate = False  # else Python's last-resort handler prints them
    try:
        yield log_file
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
        logging.captureWarnings(False)
        hf_logging.enable_default_handler()
        if bars:
            hf_logging.enable_progress_bar()
        handler.close()
