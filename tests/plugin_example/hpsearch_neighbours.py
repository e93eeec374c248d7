"""An hpsearch strategy plug-in: a few seeded random points of the discrete space, then every
neighbour (one level up or down in one hyperparameter) of the best of them.

Example YAML::

    strategy: {name: neighbours, options: {starts: 3}}
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import Field
from ray.tune.search import Searcher

from hpsearch.config import Strategy, StrategyOptions
from hpsearch_searchers.base import SearchState, StateSearcher, discrete_levels


class NeighboursOptions(StrategyOptions):
    """Options of the neighbours strategy (unknown keys are errors)."""

    starts: int = Field(default=3, ge=1, description="seeded random points tried first")


class Phase(str, Enum):
    """Where the study stands; str-valued, so the saved JSON reads as words."""

    NEW = "new"
    STARTS = "starts"
    NEIGHBOURS = "neighbours"


@dataclass
class Pending:
    """A running trial: its point, one level index per hyperparameter."""

    point: list[int]


@dataclass
class NeighboursState(SearchState):
    """Everything needed to go on after a restore; saved as JSON by the base."""

    pending: dict[str, Pending] = field(default_factory=dict)
    phase: Phase = Phase.NEW
    queue: list[list[int]] = field(default_factory=list)
    tried: list[list[int]] = field(default_factory=list)


class NeighboursSearcher(StateSearcher[NeighboursOptions, NeighboursState]):
    """Suggests the queued points; None while a phase's trials run; FINISHED at the end."""

    def _initial_state(self) -> NeighboursState:
        return NeighboursState()

    @functools.cached_property
    def _levels(self) -> dict[str, tuple[Any, ...]]:
        return discrete_levels(self._space, "neighbours")

    def _config(self, point: list[int]) -> dict[str, Any]:
        return {name: values[i] for (name, values), i in zip(self._levels.items(), point)}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if not state.queue and not state.pending and not state.finished:
            self._next_phase()
        if state.finished:
            return Searcher.FINISHED
        if not state.queue:
            return None  # the phase's trials are still running
        point = state.queue.pop(0)
        state.tried.append(point)
        self._register(trial_id, Pending(point))
        return self._config(point)

    def _next_phase(self) -> None:
        state, sizes = self.state, [len(v) for v in self._levels.values()]
        if state.phase is Phase.NEW:
            rng = random.Random(self._seed)
            points = [[rng.randrange(n) for n in sizes] for _ in range(self._options.starts)]
            state.phase, state.queue = Phase.STARTS, [p for i, p in enumerate(points) if p not in points[:i]]
            return
        best = self.best()  # the base's best successful trial of the history
        if state.phase is Phase.STARTS and best is not None:
            centre = [values.index(best.config[name]) for name, values in self._levels.items()]
            around = [centre[:f] + [centre[f] + step] + centre[f + 1:]
                      for f in range(len(sizes)) for step in (-1, 1) if 0 <= centre[f] + step < sizes[f]]
            state.phase, state.queue = Phase.NEIGHBOURS, [p for p in around if p not in state.tried]
        state.finished = not state.queue

    def _complete(self, info: Pending, value: float | None, result: dict[str, Any] | None) -> None:
        self._record(self.state.phase.value, self._config(info.point), value)


class NeighboursStrategy(Strategy):
    """Seeded random starts, then the neighbours of the best start."""

    name = "neighbours"
    description = "Seeded random starts, then every neighbour of the best one (an example plug-in)."
    Options = NeighboursOptions
    options: NeighboursOptions

    def validate(self) -> None:
        discrete_levels(self.space, self.name)  # ConfigError naming a parameter without levels

    def make_searcher(self) -> NeighboursSearcher:
        return NeighboursSearcher(self.space, self.options, seed=self.context.seed,
                                  metric=self.context.metric, mode=self.context.mode)

    def num_samples(self) -> int:
        return -1  # Tune asks until the searcher says FINISHED
