"""hpsearch's state files: JSON with a format version, the owner's class name and a fingerprint of
the experiment, written atomically; anything else (an older hpsearch's pickle) is refused."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

from hpsearch.errors import ConfigError

#: Version of the JSON a searcher's ``save`` writes (1 was a pickle).
STATE_FORMAT = 2


def fingerprint(*parts: Any) -> str:
    """A short stable hash of the study's definition (space, options, seed), kept with the state
    so that a restore into a changed experiment is refused instead of going on with garbage."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_state_file(path: str, payload: dict[str, Any]) -> None:
    """Write a searcher's or scheduler's state as JSON, atomically (a crash leaves no half file)."""
    text = json.dumps(payload, indent=1)
    directory = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=".searcher-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_state_file(path: str) -> dict[str, Any]:
    """The JSON payload :func:`write_state_file` wrote; ConfigError for anything else (an older
    hpsearch's pickle, a damaged file)."""
    try:
        with open(path, encoding="utf-8") as stream:
            payload = json.load(stream)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path} is not a searcher state in hpsearch's JSON format {STATE_FORMAT} (written by "
            f"an older hpsearch?): start a new study ({exc})"
        ) from None
    if not isinstance(payload, dict):
        raise ConfigError(f"{path} is not a searcher state (a JSON object was expected): start a new study")
    return payload


def check_saved_by(payload: dict[str, Any], owner: str) -> None:
    """ConfigError unless `payload` has this hpsearch's state format and was saved by `owner`."""
    if payload.get("format") != STATE_FORMAT:
        raise ConfigError(
            f"the saved searcher state has format {payload.get('format')!r}, this hpsearch reads "
            f"format {STATE_FORMAT}: resume with the hpsearch that saved it, or start a new study"
        )
    saved_by = payload.get("searcher")
    if saved_by != owner:
        raise ConfigError(
            f"the saved searcher state belongs to {saved_by}, not {owner}: the experiment's "
            "strategy changed since the study was saved; start a new study"
        )
