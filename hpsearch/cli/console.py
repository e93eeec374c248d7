"""The rich console every command prints through: full-width tables also when output is piped.

Rich assumes 80 columns when stdout is not a terminal, so tables printed to a file or a pipe
were cut to ``...``. Here the width is, in order: ``hpsearch --width N``, ``COLUMNS``, the
terminal's width, else :data:`PIPE_WIDTH`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

#: Columns used when writing to a pipe or a file and nothing else says how wide.
PIPE_WIDTH = 200


def make_console(stderr: bool = False) -> Any:
    """A ``rich.console.Console`` whose width follows the rules of the module docstring."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return Console(width=int(columns), stderr=stderr)
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(width=PIPE_WIDTH, stderr=stderr)


def plain(value: Any) -> Any:
    """Integral floats as ints, recursively (``{'n_layers': 1.0}`` prints as ``{'n_layers': 1}``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


class OnceFilter(logging.Filter):
    """Lets each WARNING (or worse) through once per command: the same logger and message
    again (e.g. a strategy validated by the benchmark and again by the study) is dropped."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage())
        if key in self._seen:
            return False
        self._seen.add(key)
        return True
