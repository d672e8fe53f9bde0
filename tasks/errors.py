"""The project's own error classes share one base, so the command line can tell bad input from bugs.

An :class:`UnlearnBenchError` is a problem with what was asked for (a missing file, a malformed line, a
reference made under other settings, an unwritable output): ``unlearn-bench`` reports it as one line
naming what to fix and exits with status 2. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UnlearnBenchError(Exception):
    """Bad input or an impossible request; the message says what, where and how to fix it."""


class MetadataError(UnlearnBenchError, ValueError):
    """A task option the run cannot use: unknown or malformed ``--metadata`` (convention, attack, date_string,
    fluency_ref, ...), a ``--model_args`` value a task needs, or an lm-eval flag the task refuses."""
