"""User-facing errors: each says what was wrong, with the value, and what to do."""

from __future__ import annotations


class HpsearchError(Exception):
    """Base class of errors a user can act on; the CLI prints them without a traceback."""


class ConfigError(HpsearchError, ValueError):
    """An experiment file or argument is invalid."""


class DataError(HpsearchError, ValueError):
    """Input data is missing, malformed or inconsistent (shapes, NaNs, metadata)."""
