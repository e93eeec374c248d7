"""The public base of a stateful strategy, for plug-ins: subclass :class:`StateSearcher` with your
options and a :class:`SearchState` dataclass; see the README's "Write your own strategy"."""

from __future__ import annotations

from ._base import (
    STATE_FORMAT,
    Best,
    Record,
    SearchState,
    StateSearcher,
    best_from_history,
    discrete_levels,
    public,
)

__all__ = [
    "STATE_FORMAT", "Best", "Record", "SearchState", "StateSearcher", "best_from_history", "discrete_levels",
    "public",
]
