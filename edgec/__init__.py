"""edgec: compile fine-tuned transformer classifiers into verified edge packages.

Importing this package must stay cheap: `edgec --help` runs through it, and the
runtime is used on devices without torch. Heavy libraries are imported inside the
functions that need them.
"""

__version__ = "0.1.0"
