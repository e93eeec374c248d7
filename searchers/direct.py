"""Direct search (the paper's baseline): one hyperparameter at a time, the others held at the
current best.

A *step* tries every level of one hyperparameter, the others at the current best, all in
parallel (the parallelism is the number of levels, paper table 1); the level with the best mean
objective becomes the current value (ties keep the current one). A *pass* is one step per
hyperparameter, in the space's order; passes repeat until a whole pass changes nothing, or
``max_passes`` is reached. A config already trained is never trained again (its result is
reused). Each candidate is trained ``repeats`` times (distinct ``_seed``) and the results are
averaged; with the default 1, the trial's own repeats (the experiment's setting) do that.

The search starts at the value of ``fixed`` for a hyperparameter when it is one of its levels,
else at its first level. Every hyperparameter needs discrete levels.

Example YAML::

    strategy: {name: direct, options: {max_passes: 3}}
    search_space:
      n_layers: [1, 2, 3]
      width: [32, 64, 128]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, levels: [1.0e-4, 1.0e-3, 1.0e-2]}
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from ray.tune.search import Searcher

from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import Strategy, StrategyOptions
from ._base import Best, SearchState, StateSearcher, best_from_history, discrete_levels, fingerprint

logger = logging.getLogger(__name__)

Key = tuple[int, ...]


class DirectOptions(StrategyOptions):
    """Options of the direct search."""

    #: the most passes over all hyperparameters (it stops earlier when a pass changes nothing)
    max_passes: int = Field(default=5, ge=1)
    #: trials per candidate, each with its own `_seed`, averaged (1: the trial's own repeats)
    repeats: int = Field(default=1, ge=1)


@dataclass
class Step:
    """One step of the search: the pass and the hyperparameter (factor index) it varies."""

    pass_: int
    factor: int


@dataclass
class CandidateTrial:
    """A pending trial: the candidate's levels (one index per hyperparameter) and its repeat."""

    key: Key
    repeat: int


@dataclass
class DirectState(SearchState):
    """The current point, the step, what is queued, and every candidate's objectives."""

    pending: dict[str, CandidateTrial] = field(default_factory=dict)
    current: Key | None = None
    step: Step | None = None
    changed: bool = False
    queue: list[CandidateTrial] = field(default_factory=list)
    #: candidate key (levels joined by ",") -> objectives of its repeats, in completion order
    results: dict[str, list[float | None]] = field(default_factory=dict)
    n_suggested: int = 0


def _text(key: Key) -> str:
    return ",".join(map(str, key))


class DirectSearcher(StateSearcher[DirectOptions, DirectState]):
    """One hyperparameter at a time; suggests a step's candidates, None while they run."""

    def __init__(
        self,
        space: SearchSpace,
        options: DirectOptions,
        *,
        start: dict[str, Any] | None = None,
        max_trials: int | None = None,
        seed: int = 0,
        metric: str,
        mode: str,
    ) -> None:
        self._start = dict(start or {})
        self._max_trials = max_trials
        super().__init__(space, options, seed=seed, metric=metric, mode=mode)

    @functools.cached_property
    def _levels(self) -> dict[str, tuple[Any, ...]]:
        return discrete_levels(self._space, "direct")

    def _initial_state(self) -> DirectState:
        return DirectState()

    def _fingerprint(self) -> str:
        return fingerprint(super()._fingerprint(), self._start, self._max_trials)

    # -- configs -------------------------------------------------------------------------------
    def _start_key(self) -> Key:
        key = []
        for name, values in self._levels.items():
            value = self._start.get(name)
            key.append(values.index(value) if name in self._start and value in values else 0)
        return tuple(key)

    def _config(self, key: Key, repeat: int | None = None, phase: str | None = None) -> dict[str, Any]:
        config: dict[str, Any] = {name: values[key[i]] for i, (name, values) in enumerate(self._levels.items())}
        config["_kind"] = "train"
        if phase is not None:
            config["_phase"] = phase
        if repeat is not None and self._options.repeats > 1:
            config["_seed"] = repeat
        return config

    def _step(self) -> Step:
        assert self.state.step is not None, "a step is running"
        return self.state.step

    def _current(self) -> Key:
        assert self.state.current is not None, "the start point is set at the first suggest"
        return self.state.current

    def _phase(self) -> str:
        step = self._step()
        return f"pass{step.pass_ + 1}:{list(self._levels)[step.factor]}"

    def _candidates(self) -> list[Key]:
        """Every level of the current step's hyperparameter, the others at the current point."""
        factor, current = self._step().factor, self._current()
        n_levels = len(list(self._levels.values())[factor])
        return [current[:factor] + (level,) + current[factor + 1 :] for level in range(n_levels)]

    def _mean(self, key: Key) -> float | None:
        values = [v for v in self.state.results.get(_text(key), []) if v is not None]
        return sum(values) / len(values) if values else None

    # -- the search ----------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.finished:
            return Searcher.FINISHED
        if state.current is None:
            state.current = self._start_key()
        budget_left = self._max_trials is None or state.n_suggested < self._max_trials
        if not state.queue and not state.pending and budget_left:
            self._advance()
        if state.queue and budget_left:
            trial = state.queue.pop(0)
            self._register(trial_id, trial)
            state.n_suggested += 1
            return self._config(trial.key, trial.repeat, self._phase())
        if state.pending:
            return None
        if not budget_left and state.step is not None:
            logger.info("direct search: budget of %d trials used up", self._max_trials)
            self._conclude_step()
        state.finished = True
        logger.info("direct search finished: best %s = %s", self.best_config, self.best_value)
        return Searcher.FINISHED

    def _advance(self) -> None:
        """Conclude finished steps and start the next one with untried candidates, or finish."""
        state = self.state
        n_factors = len(self._levels)
        while not state.queue and not state.finished:
            step = state.step
            if step is None:
                state.step = Step(0, 0)
            else:
                self._conclude_step()
                if step.factor + 1 < n_factors:
                    state.step = Step(step.pass_, step.factor + 1)
                elif state.changed and step.pass_ + 1 < self._options.max_passes:
                    state.step = Step(step.pass_ + 1, 0)
                    state.changed = False
                else:
                    state.finished = True
                    return
            state.queue = [CandidateTrial(key, r) for key in self._candidates() if _text(key) not in state.results
                           for r in range(self._options.repeats)]

    def _conclude_step(self) -> None:
        """Move the current point to the best level of the step's hyperparameter."""
        state = self.state
        factor, current = self._step().factor, self._current()
        best = min(self._candidates(), key=lambda k: (self.sort_key(self._mean(k)), k != current))
        if best != current and self.sort_key(self._mean(best)) < self.sort_key(self._mean(current)):
            logger.info("direct search %s: %s -> %s (%s)", self._phase(),
                        self._config(current)[list(self._levels)[factor]],
                        self._config(best)[list(self._levels)[factor]], self._mean(best))
            state.current = best
            state.changed = True
        state.queue = []

    def _complete(self, info: CandidateTrial, value: float | None, result: dict[str, Any] | None) -> None:
        self.state.results.setdefault(_text(info.key), []).append(value)
        self._record("direct", self._config(info.key, info.repeat), value)

    # -- results -------------------------------------------------------------------------------
    def best(self) -> Best | None:
        """The hyperparameters with the best mean objective over their repeats."""
        return best_from_history(self.state.history, self.sort_key, average_repeats=True)


class DirectStrategy(Strategy):
    """Direct search: one hyperparameter at a time (paper: direct search)."""

    name = "direct"
    description = (
        "Direct search: one hyperparameter at a time, the others at the current best, until a pass "
        "changes nothing."
    )
    Options = DirectOptions
    options: DirectOptions

    def validate(self) -> None:
        discrete_levels(self.space, self.name)  # ConfigError naming a parameter without levels

    def make_searcher(self) -> DirectSearcher:
        return DirectSearcher(
            self.space, self.options, start=dict(self.context.fixed), max_trials=self.context.max_trials,
            seed=self.context.seed, metric=self.context.metric, mode=self.context.mode,
        )

    def num_samples(self) -> int:
        return -1
