"""User-facing errors: each says what was wrong, with the value, and what to do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class HpsearchError(Exception):
    """Base class of errors a user can act on; the CLI prints them without a traceback."""


class ConfigError(HpsearchError, ValueError):
    """An experiment file or argument is invalid."""


class DataError(HpsearchError, ValueError):
    """Input data is missing, malformed or inconsistent (shapes, NaNs, metadata)."""


def _location(loc: tuple[Any, ...], prefix: str) -> str:
    parts = [prefix] if prefix else []
    # pydantic adds the union member or tag to the location; drop the noise for the reader
    parts += [str(p) for p in loc if str(p) not in ("categorical", "int", "float", "function-after[_check(), IntRange]")]
    return ".".join(p for p in parts if p and not p.startswith("function-")) or "(top level)"


def format_validation_error(
    exc: ValidationError, prefix: str = "", messages: Mapping[tuple[str, str], str] | None = None
) -> str:
    """One line per problem of a pydantic validation: the dotted path of the key, what is wrong,
    the value, and a hint. ``messages`` replaces the message of an (error type, top-level key)."""
    lines = []
    for error in exc.errors():
        where = _location(tuple(error["loc"]), prefix)
        message = error["msg"].removeprefix("Value error, ")
        kind = error["type"]
        special = (messages or {}).get((kind, where.split(".")[0]))
        if special is not None:
            message = special
        elif kind == "extra_forbidden":
            message = "unknown key: check the spelling (unknown keys are errors, never ignored)"
        elif kind not in ("value_error", "assertion_error") and "input" in error:
            message += f" (got {error['input']!r})"
        lines.append(f"{where}: {message}")
    return "; ".join(dict.fromkeys(lines))


def validate_mapping(model: Any, raw: Any, source: str, expected: str,
                     messages: Mapping[tuple[str, str], str] | None = None) -> Any:
    """``model.model_validate(raw)`` for a pydantic model; ConfigError naming ``source`` when
    ``raw`` is not a mapping (``expected`` lists its keys) or listing every problem with its key."""
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping ({expected}), got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc, messages=messages)}") from None
