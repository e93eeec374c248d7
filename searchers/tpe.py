"""Tree-structured Parzen Estimator: Ray Tune's OptunaSearch with an explicit, seeded TPESampler.

What the sampler learns from each kind of trial (decided here, on purpose):

- completed with a finite error: COMPLETE with that error;
- pruned by the NASWOT pruner (no error reported) or diverged: PRUNED without intermediate
  values, which Optuna's TPE puts in the *bad* group, so the region is avoided but no made-up
  error distorts the split of good and bad trials;
- failed (an exception, a non-finite error): FAIL, which TPE ignores: a crash says nothing
  about the quality of the hyperparameters.

Example YAML::

    strategy: {name: tpe, options: {n_startup_trials: 5, multivariate: true}}
    budget: {max_trials: 40}
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, TypeAdapter

from hpsearch.config.space import Categorical, FloatRange, IntRange, SearchSpace
from hpsearch.config.strategy import Strategy, StrategyOptions
from hpsearch.errors import ConfigError

try:
    import optuna
    from ray.tune.search.optuna import OptunaSearch
except ImportError as exc:  # pragma: no cover - both are hard dependencies
    raise ImportError("the tpe strategy needs Optuna and Ray Tune: pip install optuna 'ray[tune]'") from exc

from ._statefile import STATE_FORMAT, check_saved_by, fingerprint, read_state_file, write_state_file  # noqa: E402
from ._optuna_study import SavedStudy, study_from_json, study_to_json  # noqa: E402


class TPEOptions(StrategyOptions):
    """Options passed to ``optuna.samplers.TPESampler`` (given explicitly: Optuna 5 changed defaults)."""

    n_startup_trials: int = Field(default=10, ge=0, description="random trials before TPE starts")
    multivariate: bool = Field(default=True, description="model parameters jointly")
    group: bool = Field(default=False, description="decompose conditional spaces (needs multivariate)")
    constant_liar: bool = Field(default=True, description="avoid duplicate suggestions while trials run")
    n_ei_candidates: int = Field(default=24, ge=1)


def to_optuna_distributions(space: SearchSpace) -> dict[str, Any]:
    """The search space as Optuna distributions (float levels are ignored: TPE samples the range)."""
    dists = optuna.distributions
    out: dict[str, Any] = {}
    for name, parameter in space.parameters.items():
        if isinstance(parameter, Categorical):
            out[name] = dists.CategoricalDistribution(list(parameter.values))
        elif isinstance(parameter, IntRange):
            step = None if parameter.log else parameter.step
            out[name] = dists.IntDistribution(parameter.low, parameter.high, log=parameter.log, step=step or 1)
        elif isinstance(parameter, FloatRange):
            out[name] = dists.FloatDistribution(parameter.low, parameter.high, log=parameter.log)
    return out


def _state_of(result: dict[str, Any] | None, metric: str, error: bool) -> tuple[Any, float | None]:
    """The Optuna trial state and value for a finished Tune trial (see the module docstring)."""
    state = optuna.trial.TrialState
    if error or result is None:
        return state.FAIL, None
    status = result.get("status", "completed")
    value = result.get(metric)
    if status == "failed":
        return state.FAIL, None
    if status in ("diverged", "pruned") or value is None:
        return state.PRUNED, None
    if not math.isfinite(float(value)):
        return state.FAIL, None
    return state.COMPLETE, float(value)


class TPESearcher(OptunaSearch):
    """OptunaSearch that ignores per-epoch reports, maps trial outcomes deliberately, and saves its
    study as JSON (trials, running ones included, and the sampler's random state), not a pickle."""

    def __init__(self, *, fingerprint: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fingerprint = fingerprint

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """No-op: pruning comes from Tune schedulers (OptunaSearch would index a missing metric)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        state, value = _state_of(result, self.metric, error)
        self._ot_study.tell(self._ot_trials[trial_id], value, state=state)
        self._completed_trials.add(trial_id)

    def get_state(self) -> dict[str, Any]:
        """The JSON-ready payload: format, class, fingerprint, the study, Tune's trial ids."""
        study = None if self._ot_study is None else TypeAdapter(SavedStudy).dump_python(study_to_json(self._ot_study))
        numbers = {trial_id: trial.number for trial_id, trial in self._ot_trials.items()}
        state = {"study": study, "trials": numbers, "completed": sorted(self._completed_trials)}
        return {"format": STATE_FORMAT, "searcher": type(self).__name__, "fingerprint": self._fingerprint,
                "state": state}

    def set_state(self, payload: dict[str, Any]) -> None:
        check_saved_by(payload, type(self).__name__)
        if payload.get("fingerprint") != self._fingerprint:
            raise ConfigError(
                f"{type(self).__name__}: the search space, options or seed changed since the study "
                "was saved; resume with the original experiment file or start a new study"
            )
        state = payload["state"]
        self._completed_trials = set(state["completed"])
        if state["study"] is None:
            self._ot_trials = {}
            return
        study = study_from_json(TypeAdapter(SavedStudy).validate_python(state["study"]), self._sampler)
        storage = study._storage  # the trials' storage ids; Optuna offers no public way to them
        self._ot_trials = {
            trial_id: optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study._study_id, n))
            for trial_id, n in state["trials"].items()
        }
        self._ot_study = study

    def save(self, checkpoint_path: str) -> None:
        write_state_file(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(read_state_file(checkpoint_path))


class TPEStrategy(Strategy):
    """Optuna's TPE sampler through Ray Tune's OptunaSearch: adaptive, seeded, resumable."""

    name = "tpe"
    description = "Optuna TPE (Bayesian optimisation) through Ray Tune's OptunaSearch; seeded."
    Options = TPEOptions
    options: TPEOptions

    def validate(self) -> None:
        if self.context.max_trials is None:
            raise ConfigError("the tpe strategy needs a budget: set budget.max_trials (e.g. 50)")
        if self.options.group and not self.options.multivariate:
            raise ConfigError("tpe option group: true needs multivariate: true")

    def make_sampler(self) -> optuna.samplers.TPESampler:
        return optuna.samplers.TPESampler(
            n_startup_trials=self.options.n_startup_trials,
            n_ei_candidates=self.options.n_ei_candidates,
            multivariate=self.options.multivariate,
            group=self.options.group,
            constant_liar=self.options.constant_liar,
            seed=self.context.seed,
        )

    def make_searcher(self) -> TPESearcher:
        return TPESearcher(
            space=to_optuna_distributions(self.space),
            metric=self.context.metric,
            mode=self.context.mode,
            sampler=self.make_sampler(),  # seeded itself: OptunaSearch warns when given a seed too
            fingerprint=fingerprint("TPESearcher", self.space.model_dump(mode="json"),
                                    self.options.model_dump(mode="json"), self.context.seed),
        )

    def num_samples(self) -> int:
        return self.context.max_trials if self.context.max_trials is not None else -1
