"""NASWOT, then a reduced TPE study of the optimisation settings (paper: "NASWOT optimized").

First exactly as :mod:`searchers.naswot`: every architecture is scored without training and
the best is chosen. Then a seeded Optuna TPE study of ``n_trials`` trainings searches the
optimisation hyperparameters of the space (``SearchSpace.subset("optimisation")``) for that
architecture, at most ``max_concurrent`` at a time (``_phase: "tpe"``). The best
combination is trained once more (``_phase: "train-best"``), then the searcher says FINISHED.

The Optuna study lives in the searcher (ask/tell); ``save`` pickles it, trials still running
included, so a resumed study continues exactly where it stopped.

Example YAML::

    strategy: {name: naswot-optimized, options: {n_trials: 20}}
    search_space:
      n_layers: [1, 2, 3]
      width: [16, 32, 64, 128]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      batch_size: [32, 64, 128]
"""

from __future__ import annotations

import logging
import pickle
import warnings
from typing import TYPE_CHECKING, Any, cast

from pydantic import Field
from hpsearch.config.space import Categorical, FloatRange, IntRange, SearchSpace
from hpsearch.errors import ConfigError
from .naswot import (
    NaswotOptions,
    NaswotSearcher,
    NaswotStrategy,
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


class NaswotOptimizedSearcher(NaswotSearcher):
    """NASWOT score trials, then TPE trainings of the optimisation settings, then the best."""

    def __init__(self, space: SearchSpace, options: NaswotOptimizedOptions, *, max_concurrent: int = 1,
                 seed: int = 0, metric: str, mode: str) -> None:
        self._max_concurrent = max(1, max_concurrent)
        self._study: optuna.Study | None = None
        super().__init__(space, options, seed=seed, metric=metric, mode=mode)

    @property
    def _tpe_opts(self) -> NaswotOptimizedOptions:
        return cast(NaswotOptimizedOptions, self._options)

    def _initial_state(self) -> dict[str, Any]:
        state = super()._initial_state()
        state.update(tpe_asked=0, tpe_trials={}, study=None)
        return state

    # -- the Optuna study ----------------------------------------------------------------------
    def _get_study(self) -> optuna.Study:
        if self._study is None:
            import optuna  # noqa: PLC0415

            opts = self._tpe_opts
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(
                    seed=self._seed, n_startup_trials=opts.n_startup_trials,
                    multivariate=opts.multivariate, constant_liar=opts.constant_liar,
                )
            direction = "minimize" if self._objective_mode == "min" else "maximize"
            self._study = optuna.create_study(sampler=sampler, direction=direction)
        return self._study

    def _before_save(self) -> None:
        self._state["study"] = None if self._study is None else pickle.dumps(self._study)

    def _after_restore(self) -> None:
        raw = self._state.get("study")
        self._study = None if raw is None else pickle.loads(raw)

    # -- phases --------------------------------------------------------------------------------
    def _phase_config(self, trial_id: str) -> dict[str, Any] | str | None:
        state = self._state
        if state["phase"] == "score":
            if state["pending"]:
                return None
            self._select_best()
            state["phase"] = "tpe" if state["best"] is not None else "done"
        if state["phase"] == "tpe":
            if state["tpe_asked"] < self._tpe_opts.n_trials:
                if len(state["pending"]) >= self._max_concurrent:
                    return None
                return self._ask(trial_id)
            if state["pending"]:
                return None
            state["phase"] = "train-best"
            logger.info("NASWOT optimized: best optimisation settings %s", self.best_settings)
        return super()._phase_config(trial_id)

    def _ask(self, trial_id: str) -> dict[str, Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's experimental / independent-sampling notes
            trial = self._get_study().ask(optimisation_distributions(self._space))
        self._state["tpe_asked"] += 1
        self._state["tpe_trials"][trial.number] = {"params": dict(trial.params), "value": None}
        self._register(trial_id, ("tpe", trial.number))
        return self._tpe_config(trial.params)

    def _tpe_config(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**(self.best_architecture or {}), **params, "_kind": "train", "_phase": "tpe"}

    def _complete(self, info: Any, value: float | None, result: dict[str, Any] | None) -> None:
        kind, number = info
        if kind != "tpe":
            super()._complete(info, value, result)
            return
        import optuna  # noqa: PLC0415

        record = self._state["tpe_trials"][number]
        record["value"] = value
        study = self._get_study()
        if value is None:
            study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        else:
            study.tell(number, value, skip_if_finished=True)
        self._record("tpe", self._tpe_config(record["params"]), value)

    def _train_best_config(self) -> dict[str, Any]:
        return {**(self.best_architecture or {}), **(self.best_settings or {}),
                "_kind": "train", "_phase": "train-best"}

    @property
    def study(self) -> optuna.Study | None:
        """The TPE study (None before the TPE phase); its trials hold every TPE result."""
        return self._study

    @property
    def best_settings(self) -> dict[str, Any] | None:
        """The optimisation settings of the best successful TPE trial (None: none succeeded,
        the fixed settings are used)."""
        done = [r for r in self._state["tpe_trials"].values() if r["value"] is not None]
        if not done:
            return None
        return dict(min(done, key=lambda r: self.sort_key(r["value"]))["params"])


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

