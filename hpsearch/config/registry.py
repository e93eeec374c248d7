"""Find strategies and schedulers by name through entry points, never by import.

Built-ins and third-party plug-ins register the same way, in their pyproject.toml::

    [project.entry-points."hpsearch.searchers"]
    my-strategy = "my_package.my_module:MyStrategy"
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from hpsearch.config.strategy import SchedulerPlugin, Strategy
from hpsearch.errors import ConfigError

SEARCHER_GROUP = "hpsearch.searchers"
SCHEDULER_GROUP = "hpsearch.schedulers"


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def available_strategies() -> list[str]:
    """Names of every registered strategy, sorted."""
    return sorted(_entry_points(SEARCHER_GROUP))


def available_schedulers() -> list[str]:
    """Names of every registered scheduler plug-in, sorted."""
    return sorted(_entry_points(SCHEDULER_GROUP))


def _load(group: str, name: str, base: type, what: str) -> type:
    found = _entry_points(group)
    if name not in found:
        known = ", ".join(sorted(found)) or "(none installed: is hpsearch installed with pip?)"
        plural = "strategies" if what == "strategy" else f"{what}s"
        raise ConfigError(f"unknown {what} {name!r}; known {plural}: {known}")
    try:
        loaded = found[name].load()
    except ImportError as exc:
        raise ConfigError(
            f"{what} {name!r} is registered by {found[name].value} but cannot be imported: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, base)):
        raise ConfigError(f"{what} {name!r} ({found[name].value}) is not a subclass of {base.__name__}")
    return loaded


def load_strategy(name: str) -> type[Strategy]:
    """The Strategy class registered under `name`; ConfigError listing the known names."""
    return _load(SEARCHER_GROUP, name, Strategy, "strategy")


def load_scheduler(name: str) -> type[SchedulerPlugin]:
    """The SchedulerPlugin class registered under `name`; ConfigError listing the known names."""
    return _load(SCHEDULER_GROUP, name, SchedulerPlugin, "scheduler")


def describe_all() -> list[tuple[str, str, str]]:
    """(kind, name, one-line description) of every registered plug-in that imports."""
    rows: list[tuple[str, str, str]] = []
    for kind, names, loader in (
        ("strategy", available_strategies(), load_strategy),
        ("scheduler", available_schedulers(), load_scheduler),
    ):
        for name in names:
            try:
                cls = loader(name)
                rows.append((kind, name, cls.description.strip().splitlines()[0]))
            except ConfigError as exc:
                rows.append((kind, name, f"(broken: {exc})"))
    return rows
