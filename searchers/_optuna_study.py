"""An Optuna study as plain JSON data, and back: its trials (running ones included) and the random
state of its TPE sampler, so that a restored study asks exactly what the saved one would have.

Optuna rebuilds a study from FrozenTrials (``study.add_trial``); the trial numbers come back in
order, so ``study.tell(number, ...)`` of a trial that was running at save time still works.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


@dataclass
class SavedTrial:
    """One Optuna trial as JSON-ready data (distributions in Optuna's own JSON)."""

    number: int
    state: str
    params: dict[str, Any]
    distributions: dict[str, str]
    values: list[float] | None = None
    intermediate_values: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: str | None = None
    datetime_complete: str | None = None


@dataclass
class SavedStudy:
    """The trials of a single-objective study, its direction and its sampler's random states."""

    direction: str
    trials: list[SavedTrial] = field(default_factory=list)
    #: numpy MT19937 states of the sampler ("sampler") and of its random startup sampler ("random")
    rng: dict[str, list[Any]] = field(default_factory=dict)


def _rng_holders(sampler: Any) -> dict[str, Any]:
    """The LazyRandomState objects of a TPE/random sampler (private attributes: empty if absent)."""
    holders = {"sampler": getattr(sampler, "_rng", None),
               "random": getattr(getattr(sampler, "_random_sampler", None), "_rng", None)}
    return {name: h for name, h in holders.items() if h is not None and hasattr(h, "rng")}


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def study_to_json(study: optuna.Study) -> SavedStudy:
    """The study's trials and its sampler's random states."""
    from optuna.distributions import distribution_to_json  # noqa: PLC0415 - optional at import time

    trials = [
        SavedTrial(
            number=t.number, state=t.state.name, params=dict(t.params),
            distributions={k: distribution_to_json(d) for k, d in t.distributions.items()},
            values=None if t.values is None else [float(v) for v in t.values],
            intermediate_values={int(k): float(v) for k, v in t.intermediate_values.items()},
            user_attrs=dict(t.user_attrs), system_attrs=dict(t.system_attrs),
            datetime_start=_iso(t.datetime_start), datetime_complete=_iso(t.datetime_complete),
        )
        for t in study.get_trials(deepcopy=False)
    ]
    rng = {}
    for name, holder in _rng_holders(study.sampler).items():
        kind, keys, pos, has_gauss, cached = holder.rng.get_state()
        rng[name] = [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
    return SavedStudy(direction=study.direction.name, trials=trials, rng=rng)


def study_from_json(saved: SavedStudy, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """A new in-memory study with `sampler` holding the saved trials, the sampler's random state
    set to the saved one (a warning when this Optuna keeps it elsewhere)."""
    import numpy as np  # noqa: PLC0415
    import optuna  # noqa: PLC0415
    from optuna.distributions import json_to_distribution  # noqa: PLC0415

    direction = "minimize" if saved.direction == "MINIMIZE" else "maximize"
    study = optuna.create_study(sampler=sampler, direction=direction)
    for t in saved.trials:
        state = optuna.trial.TrialState[t.state]
        study.add_trial(optuna.trial.FrozenTrial(
            number=t.number, state=state, value=None, values=t.values,
            datetime_start=None if t.datetime_start is None else dt.datetime.fromisoformat(t.datetime_start),
            datetime_complete=None if t.datetime_complete is None else dt.datetime.fromisoformat(t.datetime_complete),
            params=dict(t.params),
            distributions={k: json_to_distribution(d) for k, d in t.distributions.items()},
            user_attrs=dict(t.user_attrs), system_attrs=dict(t.system_attrs),
            intermediate_values=dict(t.intermediate_values), trial_id=t.number,
        ))
    holders = _rng_holders(sampler)
    for name, (kind, keys, pos, has_gauss, cached) in saved.rng.items():
        if name not in holders:
            logger.warning("this Optuna keeps no %s random state where hpsearch looks; the restored "
                           "study's suggestions may differ from an uninterrupted one", name)
            continue
        holders[name].rng.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    return study


class OwnedStudy:
    """A seeded in-memory Optuna study a searcher owns: made at first use, asked and told by
    trial number, saved as :class:`SavedStudy` and rebuilt from it."""

    def __init__(self, make_sampler: Callable[[], optuna.samplers.BaseSampler]) -> None:
        self._make_sampler = make_sampler
        self.study: optuna.Study | None = None

    def get(self, mode: str) -> optuna.Study:
        """The study (created on first use, minimising for mode "min")."""
        if self.study is None:
            import optuna  # noqa: PLC0415

            direction = "minimize" if mode == "min" else "maximize"
            self.study = optuna.create_study(sampler=self._make_sampler(), direction=direction)
        return self.study

    def ask(self, mode: str, distributions: dict[str, Any]) -> optuna.Trial:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's experimental / independent-sampling notes
            return self.get(mode).ask(distributions)

    def tell(self, mode: str, number: int, value: float | None) -> None:
        """A finished trial: its objective, or FAIL for None (TPE ignores failed trials)."""
        import optuna  # noqa: PLC0415

        study = self.get(mode)
        if value is None:
            study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        else:
            study.tell(number, value, skip_if_finished=True)

    def save(self) -> SavedStudy | None:
        return None if self.study is None else study_to_json(self.study)

    def restore(self, saved: SavedStudy | None) -> None:
        self.study = None if saved is None else study_from_json(saved, self._make_sampler())
