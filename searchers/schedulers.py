"""Ray Tune's multi-fidelity schedulers by name: ``asha``, ``hyperband`` and ``median``.

The resource is the epoch (the ``epoch`` every training trial reports, counted across its
``repeats``) and the intermediate metric the validation loss of that epoch (``val_loss``,
lower is better); the study's final metric (:data:`hpsearch.config.strategy.METRIC`) stays what
searchers learn from. A stopped trial reports no final metric: the study records it as
``stopped``, TPE learns it as PRUNED, the other searchers as a trial without a result.

- ``asha``: asynchronous successive halving (``ASHAScheduler``): at each rung
  (``grace_period * reduction_factor**i`` epochs) a trial goes on only if its loss is in the
  best ``1/reduction_factor`` of the trials that reached that rung.
- ``hyperband``: synchronous Hyperband (``HyperBandScheduler``): brackets of trials, paused at
  each milestone until the bracket can halve. The trainable keeps no checkpoints, so a paused
  trial that goes on trains again from its first epoch: prefer ``asha`` when compute counts.
- ``median``: the median stopping rule (``MedianStoppingRule``): after ``grace_period`` epochs,
  stop a trial whose best loss is worse than the median of the other trials' running means.

``max_t`` (epochs) defaults to the fixed ``max_epochs``; give it when ``max_epochs`` is searched
or ``repeats`` > 1 (then epochs add up across repeats). It places the rungs; a training still
ends at its own ``max_epochs`` (Ray's stop at ``max_t`` is switched off: it would stop a trial
on its last epoch, before the report that holds its final error). Any of them composes with any searcher,
and after the NASWOT pruner through its ``then`` option.

Example YAML::

    strategy: {name: tpe}
    scheduler: {name: asha, options: {grace_period: 2, reduction_factor: 3, max_t: 30}}
"""

from __future__ import annotations

import abc
from typing import Literal

from pydantic import Field

from hpsearch.config.strategy import SchedulerPlugin, StrategyOptions
from hpsearch.errors import ConfigError
from ._chain import ChainedScheduler

try:
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, MedianStoppingRule, TrialScheduler
except ImportError as exc:  # pragma: no cover - ray is a hard dependency
    raise ImportError("the asha/hyperband/median schedulers need Ray Tune: pip install 'ray[tune]'") from exc

#: The resource every epoch-based scheduler counts (key of each per-epoch report).
TIME_ATTR = "epoch"
IntermediateMetric = Literal["val_loss", "train_loss"]


class EpochSchedulerOptions(StrategyOptions):
    """What every epoch-based scheduler shares."""

    metric: IntermediateMetric = Field(default="val_loss", description="per-epoch loss judged (lower is better)")
    max_t: int | None = Field(default=None, ge=1, description="most epochs per trial; default: the fixed max_epochs")


class AshaOptions(EpochSchedulerOptions):
    """Options of ``ASHAScheduler`` (epochs)."""

    grace_period: int = Field(default=1, ge=1, description="epochs before the first rung")
    reduction_factor: float = Field(default=3.0, gt=1, description="keep 1/reduction_factor at each rung")
    brackets: int = Field(default=1, ge=1, description="ASHA brackets (asynchronous Hyperband when > 1)")


class HyperbandOptions(EpochSchedulerOptions):
    """Options of ``HyperBandScheduler`` (epochs)."""

    reduction_factor: float = Field(default=3.0, gt=1, description="keep 1/reduction_factor at each milestone")


class MedianOptions(EpochSchedulerOptions):
    """Options of ``MedianStoppingRule`` (epochs)."""

    grace_period: int = Field(default=2, ge=1, description="epochs before a trial may be stopped")
    min_samples_required: int = Field(default=3, ge=1, description="other trials needed to compute the median")


class EpochScheduler(SchedulerPlugin):
    """A Ray Tune scheduler that judges trials every epoch on their loss (base of the three)."""

    options: EpochSchedulerOptions

    def max_t(self) -> int:
        """Epochs per trial at most: the option, else the fixed ``max_epochs``; ConfigError if neither."""
        if self.options.max_t is not None:
            return self.options.max_t
        fixed = self.context.fixed.get("max_epochs")
        if isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 1:
            raise ConfigError(
                f"the {self.name} scheduler needs max_t (epochs): give options.max_t, or a whole "
                f"number of epochs in fixed.max_epochs (got {fixed!r})"
            )
        return fixed

    def validate(self) -> None:
        self.max_t()

    @abc.abstractmethod
    def make_tune_scheduler(self) -> TrialScheduler:
        """The Ray Tune scheduler, built with its own time attribute, metric and mode."""

    def make_scheduler(self) -> ChainedScheduler:
        self.validate()
        return ChainedScheduler([(self.make_tune_scheduler(), (TIME_ATTR, self.options.metric))])


def _check_grace(name: str, grace_period: int, max_t: int) -> None:
    if grace_period > max_t:
        raise ConfigError(
            f"{name}: grace_period {grace_period} epochs exceeds max_t {max_t} epochs: lower "
            "grace_period or raise max_t (or fixed.max_epochs)"
        )


class AshaPlugin(EpochScheduler):
    """Ray Tune's ASHA on the per-epoch validation loss."""

    name = "asha"
    description = "ASHA: asynchronous successive halving on the per-epoch validation loss (Ray Tune)."
    Options = AshaOptions
    options: AshaOptions

    def validate(self) -> None:
        _check_grace(self.name, self.options.grace_period, self.max_t())

    def make_tune_scheduler(self) -> ASHAScheduler:
        opts = self.options
        return ASHAScheduler(
            time_attr=TIME_ATTR, metric=opts.metric, mode="min", max_t=self.max_t(),
            grace_period=opts.grace_period, reduction_factor=opts.reduction_factor, brackets=opts.brackets,
            stop_last_trials=False,
        )


class HyperbandPlugin(EpochScheduler):
    """Ray Tune's synchronous Hyperband on the per-epoch validation loss."""

    name = "hyperband"
    description = "Hyperband: brackets of successive halving, trials paused at milestones (Ray Tune)."
    Options = HyperbandOptions
    options: HyperbandOptions

    def make_tune_scheduler(self) -> HyperBandScheduler:
        return HyperBandScheduler(
            time_attr=TIME_ATTR, metric=self.options.metric, mode="min", max_t=self.max_t(),
            reduction_factor=self.options.reduction_factor, stop_last_trials=False,
        )


class MedianPlugin(EpochScheduler):
    """Ray Tune's median stopping rule on the per-epoch validation loss."""

    name = "median"
    description = "Median stopping: stop a trial whose loss is worse than the median of the others (Ray Tune)."
    Options = MedianOptions
    options: MedianOptions

    def validate(self) -> None:
        _check_grace(self.name, self.options.grace_period, self.max_t())

    def make_tune_scheduler(self) -> MedianStoppingRule:
        return MedianStoppingRule(
            time_attr=TIME_ATTR, metric=self.options.metric, mode="min",
            grace_period=self.options.grace_period, min_samples_required=self.options.min_samples_required,
            hard_stop=True,
        )
