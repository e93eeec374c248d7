"""Reading a YAML file a user wrote: a missing file or bad YAML is a ConfigError that says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpsearch.errors import ConfigError


def read_yaml(path: str | Path, what: str = "experiment file") -> Any:
    """The parsed content of `path`; ConfigError naming `what` when it is missing or not YAML."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist: give the path of a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path} ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path} nests too deeply to be an {what}") from None
