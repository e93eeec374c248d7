"""NASWOT, then a reduced TPE study of the optimisation settings (paper: "NASWOT optimized").

First exactly as :mod:`searchers.naswot`: every architecture is scored without training and
the best is chosen. Then a seeded Optuna TPE study of ``n_trials`` trainings searches the
optimisation hyperparameters of the space (``SearchSpace.subset("optimisation")``) for that
architecture, at most ``max_concurrent`` at a time (``_phase: "tpe"``). The best
combination is trained once more (``_phase: "train-best"``), then the searcher says FINISHED.

The Optuna study lives in the searcher (ask/tell); ``save`` writes its trials as JSON (trials
still running included) with its sampler's random state, so a resumed study continues exactly
where it stopped.

Example YAML::

    strategy: {name: naswot-optimized, options: {n_trials: 20}}
    search_space:
      n_layers: [1, 2, 3]
      width: [16, 32, 64, 128]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      batch_size: [32, 64, 128]
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from hpsearch.config.space import Categorical, FloatRange, IntRange, SearchSpace
from hpsearch.errors import ConfigError
from ._optuna_study import OwnedStudy, SavedStudy
from .naswot import (
    NaswotOptions,
    NaswotPhase,
    NaswotState,
    NaswotStrategy,
    ScoreTrial,
    ScoringSearcher,
    TrainBestTrial,
    check_budget,
    validate_architecture_space,
)

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


class NaswotOptimizedOptions(NaswotOptions):
    """Options of NASWOT followed by a reduced TPE study of the optimisation settings."""

    #: trainings of the TPE study (the final training of the best comes on top)
    n_trials: int = Field(default=20, ge=1)
    #: random trials before TPE models the results
    n_startup_trials: int = Field(default=10, ge=0)
    multivariate: bool = True
    constant_liar: bool = True


def optimisation_distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna distributions of the optimisation hyperparameters (ranges as ranges, levels ignored)."""
    from optuna.distributions import (  # noqa: PLC0415 - optional at import time
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    subset = space.subset("optimisation")
    if subset is None:
        raise ConfigError(
            f"naswot-optimized tunes optimisation hyperparameters after NASWOT, but the search space "
            f"{space.names} has none (learning_rate, batch_size, patience, optimizer, weight_decay, "
            "min_delta, max_epochs, lr_schedule): add some, or use the naswot strategy"
        )
    out: dict[str, Any] = {}
    for name, parameter in subset.parameters.items():
        if isinstance(parameter, Categorical):
            out[name] = CategoricalDistribution(list(parameter.values))
        elif isinstance(parameter, IntRange):
            if parameter.log and parameter.step != 1:
                raise ConfigError(f"{name}: an integer range cannot be both log and step {parameter.step} for TPE")
            out[name] = IntDistribution(parameter.low, parameter.high, log=parameter.log, step=parameter.step)
        elif isinstance(parameter, FloatRange):
            out[name] = FloatDistribution(parameter.low, parameter.high, log=parameter.log)
    return out


@dataclass
class TpeTrial:
    """A pending TPE training: the Optuna trial number."""

    number: int
    kind: Literal["tpe"] = "tpe"


OptimizedTrial = Annotated[ScoreTrial | TrainBestTrial | TpeTrial, Field(discriminator="kind")]


@dataclass
class TpeRecord:
    """The optimisation settings of one TPE trial and its objective (None: running or failed)."""

    params: dict[str, Any]
    value: float | None = None


@dataclass
class NaswotOptimizedState(NaswotState):
    """NASWOT's state, the TPE trials asked so far and the Optuna study (filled at save time)."""

    pending: dict[str, OptimizedTrial] = field(default_factory=dict)
    tpe_asked: int = 0
    tpe_trials: dict[int, TpeRecord] = field(default_factory=dict)
    study: SavedStudy | None = None


def tpe_sampler(seed: int, n_startup_trials: int, multivariate: bool,
                constant_liar: bool) -> optuna.samplers.TPESampler:
    """The seeded TPE sampler of the optimisation settings (Optuna's experimental notes quiet)."""
    import optuna  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials,
                                          multivariate=multivariate, constant_liar=constant_liar)


class NaswotOptimizedSearcher(ScoringSearcher[NaswotOptimizedOptions, NaswotOptimizedState]):
    """NASWOT score trials, then TPE trainings of the optimisation settings, then the best."""

    def __init__(self, space: SearchSpace, options: NaswotOptimizedOptions, *, max_concurrent: int = 1,
                 seed: int = 0, metric: str, mode: str) -> None:
        self._max_concurrent = max(1, max_concurrent)
        self._tpe = OwnedStudy(functools.partial(tpe_sampler, seed, options.n_startup_trials,
                                                 options.multivariate, options.constant_liar))
        super().__init__(space, options, seed=seed, metric=metric, mode=mode)

    def _initial_state(self) -> NaswotOptimizedState:
        return NaswotOptimizedState()

    # -- the Optuna study ----------------------------------------------------------------------
    def _before_save(self) -> None:
        self.state.study = self._tpe.save()

    def _after_restore(self) -> None:
        self._tpe.restore(self.state.study)

    # -- phases --------------------------------------------------------------------------------
    def _phase_config(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self.state
        if state.phase is NaswotPhase.SCORE:
            if state.pending:
                return None
            self._select_best()
            state.phase = NaswotPhase.TPE if state.best is not None else NaswotPhase.DONE
        if state.phase is NaswotPhase.TPE:
            if state.tpe_asked < self._options.n_trials:
                if len(state.pending) >= self._max_concurrent:
                    return None
                return self._ask(trial_id)
            if state.pending:
                return None
            state.phase = NaswotPhase.TRAIN_BEST
            logger.info("NASWOT optimized: best optimisation settings %s", self.best_settings)
        return super()._phase_config(trial_id)

    def _ask(self, trial_id: str) -> dict[str, Any]:
        trial = self._tpe.ask(self._objective_mode, optimisation_distributions(self._space))
        self.state.tpe_asked += 1
        self.state.tpe_trials[trial.number] = TpeRecord(dict(trial.params))
        self._register(trial_id, TpeTrial(trial.number))
        return self._tpe_config(trial.params)

    def _tpe_config(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**(self.best_architecture or {}), **params, "_kind": "train", "_phase": "tpe"}

    def _complete(self, info: Any, value: float | None, result: dict[str, Any] | None) -> None:
        if not isinstance(info, TpeTrial):
            super()._complete(info, value, result)
            return
        record = self.state.tpe_trials[info.number]
        record.value = value
        self._tpe.tell(self._objective_mode, info.number, value)
        self._record("tpe", self._tpe_config(record.params), value)

    def _train_best_config(self) -> dict[str, Any]:
        return {**(self.best_architecture or {}), **(self.best_settings or {}),
                "_kind": "train", "_phase": "train-best"}

    @property
    def study(self) -> optuna.Study | None:
        """The TPE study (None before the TPE phase); its trials hold every TPE result."""
        return self._tpe.study

    @property
    def best_settings(self) -> dict[str, Any] | None:
        """The optimisation settings of the best successful TPE trial (None: none succeeded,
        the fixed settings are used)."""
        done = [(r, r.value) for r in self.state.tpe_trials.values() if r.value is not None]
        if not done:
            return None
        return dict(min(done, key=lambda item: self.sort_key(item[1]))[0].params)


class NaswotOptimizedStrategy(NaswotStrategy):
    """NASWOT for the architecture, then reduced TPE for the optimisation (paper: NASWOT optimized)."""

    name = "naswot-optimized"
    description = "NASWOT optimized: NASWOT picks the architecture, a reduced TPE study its optimisation settings."
    Options = NaswotOptimizedOptions
    options: NaswotOptimizedOptions

    def validate(self) -> None:
        validate_architecture_space(self.space, self.name)
        optimisation_distributions(self.space)
        n_score = self.n_score_trials()
        needed = n_score + self.options.n_trials + 1
        check_budget(self.name, needed, self.context.max_trials,
                     f"{n_score} score trials + {self.options.n_trials} TPE trials + 1 final training")

    def make_searcher(self) -> NaswotOptimizedSearcher:
        return NaswotOptimizedSearcher(
            self.space, self.options, max_concurrent=self.context.max_concurrent,
            seed=self.context.seed, metric=self.context.metric, mode=self.context.mode,
        )

