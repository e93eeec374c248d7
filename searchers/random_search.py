"""Plain seeded random search: the baseline of every hyperparameter-optimisation comparison.

Each trial draws every hyperparameter of the space independently: categorical values uniformly,
integer ranges uniformly on their ``step`` grid (log-uniformly when ``log``), float ranges
uniformly or log-uniformly (``levels`` are ignored: the whole range is sampled, as TPE does).
Draw number ``i`` comes from its own generator seeded by ``(seed, i)``, so a restored study
draws exactly what the interrupted one would have. With ``unique`` (default) a configuration
is never drawn twice; a discrete space then finishes once every point was tried.

Example YAML::

    strategy: {name: random}
    scheduler: {name: asha, options: {grace_period: 2, max_t: 30}}
    budget: {max_trials: 40}
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from ray.tune.search import Searcher

from hpsearch.config.space import Categorical, FloatRange, IntRange, SearchSpace, Value
from hpsearch.config.strategy import Strategy, StrategyOptions
from hpsearch.errors import ConfigError
from ._base import SearchState, StateSearcher

logger = logging.getLogger(__name__)


def _key(config: dict[str, Value]) -> str:
    return json.dumps(config, sort_keys=True, default=repr)


class RandomOptions(StrategyOptions):
    """Options of random search."""

    unique: bool = Field(default=True, description="never draw the same configuration twice")
    max_draws: int = Field(default=1000, ge=1, description="draws per trial to find an unseen configuration")


def _draw_int(rng: random.Random, parameter: IntRange) -> int:
    low, high, step = parameter.low, parameter.high, parameter.step
    n_steps = (high - low) // step
    if not parameter.log or n_steps == 0:
        return low + step * rng.randint(0, n_steps)
    # log-uniform on [low - 1/2, high + 1/2) so that every integer keeps its share of the log axis
    value = math.exp(rng.uniform(math.log(max(low - 0.5, 0.5)), math.log(high + 0.5)))
    return min(high, max(low, low + step * round((value - low) / step)))


def draw(space: SearchSpace, rng: random.Random) -> dict[str, Value]:
    """One point of `space`, each hyperparameter drawn independently (see the module docstring)."""
    point: dict[str, Value] = {}
    for name, parameter in space.parameters.items():
        if isinstance(parameter, Categorical):
            point[name] = parameter.values[rng.randrange(len(parameter.values))]
        elif isinstance(parameter, IntRange):
            point[name] = _draw_int(rng, parameter)
        elif isinstance(parameter, FloatRange):
            if parameter.log:
                point[name] = math.exp(rng.uniform(math.log(parameter.low), math.log(parameter.high)))
            else:
                point[name] = rng.uniform(parameter.low, parameter.high)
    return point


def space_size(space: SearchSpace) -> float:
    """Distinct points the space holds for random search (inf with a float range)."""
    size = 1.0
    for parameter in space.parameters.values():
        if isinstance(parameter, Categorical):
            size *= len(parameter.values)
        elif isinstance(parameter, IntRange):
            size *= (parameter.high - parameter.low) // parameter.step + 1
        else:
            return math.inf
    return size


@dataclass
class RandomState(SearchState):
    """The draw counter, the trials suggested, and the keys of the configurations drawn so far;
    a pending trial's record is its configuration."""

    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    draws: int = 0
    suggested: int = 0
    seen: list[str] = field(default_factory=list)


class RandomSearcher(StateSearcher[RandomOptions, RandomState]):
    """Draws independent random configurations; the state is the draw counter and the seen set."""

    def __init__(self, space: SearchSpace, options: RandomOptions, *, n_trials: int | None = None,
                 seed: int = 0, metric: str, mode: str) -> None:
        self._n_trials = n_trials
        super().__init__(space, options, seed=seed, metric=metric, mode=mode)

    def _initial_state(self) -> RandomState:
        return RandomState()

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.finished or (self._n_trials is not None and state.suggested >= self._n_trials):
            state.finished = True
            return Searcher.FINISHED
        options = self._options
        seen = set(state.seen)
        for _ in range(options.max_draws):
            rng = random.Random(f"hpsearch-random/{self._seed}/{state.draws}")
            state.draws += 1
            config = draw(self._space, rng)
            key = _key(config)
            if not options.unique or key not in seen:
                break
        else:
            logger.info("random search: no unseen configuration in %d draws; finished", options.max_draws)
            state.finished = True
            return Searcher.FINISHED
        state.seen.append(key)
        state.suggested += 1
        self._register(trial_id, config)
        if options.unique and len(state.seen) >= space_size(self._space):
            state.finished = True  # every point of a discrete space was drawn: the next call ends
        return dict(config)

    def _complete(self, info: dict[str, Any], value: float | None, result: dict[str, Any] | None) -> None:
        self._record("random", info, value)


class RandomStrategy(Strategy):
    """Seeded random search over the whole space, resumable."""

    name = "random"
    description = "Random search: independent seeded draws from the whole space (the HPO baseline)."
    Options = RandomOptions
    options: RandomOptions

    def validate(self) -> None:
        if self.context.max_trials is None and math.isinf(space_size(self.space)):
            raise ConfigError(
                "the random strategy over a space with float ranges needs a budget: set budget.max_trials (e.g. 50)"
            )
        if self.context.max_trials is None and not self.options.unique:
            raise ConfigError("the random strategy with unique: false needs a budget: set budget.max_trials")

    def make_searcher(self) -> RandomSearcher:
        return RandomSearcher(self.space, self.options, n_trials=self.context.max_trials, seed=self.context.seed,
                              metric=self.context.metric, mode=self.context.mode)

    def num_samples(self) -> int:
        return self.context.max_trials if self.context.max_trials is not None else -1
