"""The small base classes every search strategy and scheduler plug-in implements.

Call order, driven by the runner (``hpsearch.tune``):

1. ``__init__(space, options, context)`` stores its arguments and does no work;
2. ``validate()`` raises :class:`~hpsearch.errors.ConfigError` for impossible combinations
   (called before anything starts, also by ``hpsearch run --dry-run``);
3. ``make_searcher()`` returns a Ray Tune ``Searcher``; ``num_samples()`` tells Tune how many
   trials to ask for (-1: until the searcher returns ``Searcher.FINISHED``);
4. Tune runs; the searcher's ``save``/``restore`` carry its state across ``hpsearch resume``.

Once the data are known (also on ``hpsearch resume``), the runner calls ``prepared(data)``,
which returns the strategy to run: itself (default), or a copy with options settled on the
training and validation snapshots (e.g. ``proxy: auto``).

``trial_kinds()`` and ``trial_wrappers()`` (default: none) declare the trial functions a
strategy or scheduler needs beyond the built-in training (:mod:`hpsearch.config.trials`); the
runner collects them before the study starts and the trainable runs them by ``_kind``.

A strategy suggests *trial configs*: flat dicts of hyperparameters (names of
:mod:`hpsearch.config.space`) plus reserved keys that start with an underscore, listed in
:data:`RESERVED_KEYS`. The trainable fills everything a trial does not name from
``StrategyContext.fixed``.

Example, a strategy that tries one fixed configuration::

    class OneShot(Strategy):
        name = "one-shot"
        description = "Train the fixed configuration once."

        def make_searcher(self):
            from ray.tune.search import BasicVariantGenerator
            return BasicVariantGenerator(points_to_evaluate=[dict(self.context.fixed)])

        def num_samples(self) -> int:
            return 1
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from hpsearch.config.space import SearchSpace
from hpsearch.config.trials import TrialKind, TrialWrapper

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import Searcher

    from hpsearch.config.experiment import NaswotConfig
    from hpsearch.data.splits import Split

#: The objective every training trial reports and searchers minimise by default: the mean
#: band-energy error (meV/atom) over the *validation* snapshots. Test snapshots never select.
METRIC = "val_error_mev_per_atom"
#: The alternative objective (``objective: ldos_mse``): the mean squared error of the scaled LDOS
#: over the validation points (the training loss, on validation data).
LDOS_METRIC = "val_ldos_mse"
#: Spread of the validation error over a trial's ``repeats`` (sample std, meV/atom).
STD_METRIC = "val_error_std_mev_per_atom"
#: Experiment ``objective`` -> the Tune metric the searchers and schedulers optimise.
OBJECTIVES: dict[str, str] = {"band_energy": METRIC, "ldos_mse": LDOS_METRIC}
MODE: Literal["min"] = "min"
#: The training-free score a trial reports before training when asked (higher is better).
NASWOT_METRIC = "naswot_score"

#: Reserved trial-config keys and their meaning.
RESERVED_KEYS = {
    "_kind": "'train' (default): train and evaluate; other kinds are declared by the strategy (trial_kinds), "
             "e.g. the NASWOT strategies' 'score': score `_candidates`, no training",
    "_candidates": "list of architecture dicts scored by a 'score' trial (NASWOT strategies)",
    "_seed": "integer added to the experiment seed for this trial's initialisations",
    "_naswot": "true: report the training-free score first (the naswot-pruner's wrapper around training)",
    "_proxy": "the training-free proxy a 'score' trial ranks `_candidates` with (NASWOT strategies)",
    "_phase": "free-form label of the strategy's phase, logged with the trial",
}


def reported_list(value: Any) -> list[Any] | None:
    """A list a trial reported (e.g. ``naswot_scores``), as a list or as its JSON text (JSON keeps
    Tune's TensorBoard logger quiet: it skips strings but warns on lists); None when absent or unreadable."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return list(value) if isinstance(value, (list, tuple)) else None


def finite_or_none(value: Any) -> float | None:
    """A reported number as a finite float; None when absent, not a number, NaN or infinite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class StrategyOptions(BaseModel):
    """Options of a strategy; subclasses add fields. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may know of the experiment besides its search space."""

    seed: int = 0
    #: values used for every hyperparameter a trial config does not name
    fixed: dict[str, Any] = field(default_factory=dict)
    #: the most trials the experiment allows (None: the strategy decides)
    max_trials: int | None = None
    #: how many trials may run at once
    max_concurrent: int = 1
    metric: str = METRIC
    mode: Literal["min", "max"] = MODE


@dataclass(frozen=True)
class SearchData:
    """The data a search runs on, for what a strategy settles before its first trial."""

    store_path: str
    #: training and validation snapshots only: a search never sees a test snapshot
    split: Split
    #: the experiment's training-free scoring settings (batch of points, initialisations)
    naswot: NaswotConfig


class Strategy(abc.ABC):
    """A search strategy: turns a search space into a Ray Tune searcher."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, space: SearchSpace, options: StrategyOptions, context: StrategyContext) -> None:
        self.space = space
        self.options = options
        self.context = context

    def validate(self) -> None:
        """Raise ConfigError for combinations this strategy cannot run. Default: accept."""

    @abc.abstractmethod
    def make_searcher(self) -> Searcher:
        """A fresh Ray Tune Searcher (with save/restore) for this study."""

    def num_samples(self) -> int:
        """Trials Tune asks for; -1 runs until the searcher says FINISHED."""
        return -1

    def prepared(self, data: SearchData) -> Strategy:
        """The strategy to run on `data`: itself (default), or a copy with options settled on the data."""
        return self

    def trial_kinds(self) -> Mapping[str, TrialKind]:
        """Trial kinds this strategy's configs name in ``_kind`` besides 'train'. Default: none."""
        return {}

    def tracking_params(self) -> Mapping[str, Any]:
        """What the study's MLflow run should record of this strategy beyond its options (e.g. the proxy
        a NASWOT strategy settled on and its sign). Default: nothing."""
        return {}

    def trial_wrappers(self) -> Sequence[TrialWrapper]:
        """Functions run around the trials of a kind (e.g. training). Default: none."""
        return ()


class SchedulerPlugin(abc.ABC):
    """A trial scheduler added to any strategy (e.g. the NASWOT pruner)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions
    #: extra reserved keys the scheduler needs in every trial config (e.g. {"_naswot": True})
    trial_flags: ClassVar[dict[str, Any]] = {}

    def __init__(self, options: StrategyOptions, context: StrategyContext) -> None:
        self.options = options
        self.context = context

    def validate(self) -> None:
        """Raise ConfigError for impossible settings. Default: accept."""

    @abc.abstractmethod
    def make_scheduler(self) -> TrialScheduler:
        """A fresh Ray Tune TrialScheduler (with save/restore where it has state)."""

    def trial_kinds(self) -> Mapping[str, TrialKind]:
        """Trial kinds this scheduler needs besides 'train'. Default: none."""
        return {}

    def tracking_params(self) -> Mapping[str, Any]:
        """What the study's MLflow run should record of this scheduler beyond its options. Default: nothing."""
        return {}

    def trial_wrappers(self) -> Sequence[TrialWrapper]:
        """Functions run around the trials of a kind (e.g. score before training). Default: none."""
        return ()
