"""The null strategy ("no search"): one architecture drawn at random, trained once.

Per study it draws **one** point of the architecture part of the search space
(``SearchSpace.subset("architecture")``: n_layers, width, activation, ...) with the study's seed,
each hyperparameter independently as random search draws it, and trains it once; the
optimisation hyperparameters come from the experiment's ``fixed`` section, as NASWOT (fixed)
trains its winner. The study then retrains it like any winner. It is the row a search has to
beat: a benchmark in which TPE does not beat it cannot tell searches apart on its data.

Example YAML::

    strategy: {name: "null"}     # quoted: YAML reads a bare null as "nothing"
    search_space:
      n_layers: [1, 2, 3, 4]
      width: [16, 32, 64, 128]
      activation: [ReLU, LeakyReLU, Sigmoid, Tanh]
    fixed: {learning_rate: 3.0e-3, batch_size: 64, patience: 4, max_epochs: 30}
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from ray.tune.search import Searcher

from hpsearch.config.space import SearchSpace, Value
from hpsearch.config.strategy import Strategy, StrategyOptions
from hpsearch.errors import ConfigError

from ._base import SearchState, StateSearcher
from .random_search import draw

__all__ = ["NullOptions", "NullSearcher", "NullState", "NullStrategy", "null_architecture"]

logger = logging.getLogger(__name__)

#: the phase of the one trial, in its config and the searcher's history
PHASE = "null"


class NullOptions(StrategyOptions):
    """The null strategy has no options (the seed and the space decide its one draw)."""


def architecture_space(space: SearchSpace) -> SearchSpace:
    """The architecture part of `space`; ConfigError when it has none."""
    arch = space.subset("architecture")
    if arch is None:
        raise ConfigError(
            f"the null strategy draws an architecture, but the search space {space.names} has no architecture "
            "hyperparameter (n_layers, width, activation, dropout, width_<i>, activation_<i>): add one"
        )
    return arch


def null_architecture(space: SearchSpace, seed: int) -> dict[str, Value]:
    """The architecture the null strategy trains for `seed`: one independent draw per hyperparameter."""
    return draw(architecture_space(space), random.Random(f"hpsearch-null/{seed}"))


@dataclass
class NullState(SearchState):
    """Whether the one trial was suggested; a pending trial's record is its configuration."""

    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    suggested: bool = False


class NullSearcher(StateSearcher[NullOptions, NullState]):
    """Suggests the drawn architecture once, then FINISHED."""

    def _initial_state(self) -> NullState:
        return NullState()

    def _config(self) -> dict[str, Any]:
        return {**null_architecture(self._space, self._seed), "_phase": PHASE}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.finished or state.suggested:
            return Searcher.FINISHED if state.finished or not state.pending else None
        config = self._config()
        state.suggested = True
        self._register(trial_id, config)
        return dict(config)

    def _complete(self, info: dict[str, Any], value: float | None, result: dict[str, Any] | None) -> None:
        self._record(PHASE, info, value)
        self.state.finished = True


class NullStrategy(Strategy):
    """No search: one seeded random architecture, trained with the fixed optimisation settings."""

    name = "null"
    description = "No search: one architecture drawn at random with the seed, trained once with the fixed settings."
    Options = NullOptions
    options: NullOptions

    def validate(self) -> None:
        architecture_space(self.space)
        optimisation = self.space.subset("optimisation")
        if optimisation is not None:
            logger.info("null: the optimisation hyperparameters %s come from `fixed`, not from the space",
                        optimisation.names)

    def make_searcher(self) -> NullSearcher:
        return NullSearcher(self.space, self.options, seed=self.context.seed,
                            metric=self.context.metric, mode=self.context.mode)

    def num_samples(self) -> int:
        return 1
