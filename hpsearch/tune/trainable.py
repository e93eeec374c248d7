"""The trial: what one Ray Tune trial of a study does, following the trial protocol.

The trial config's ``_kind`` (default ``train``) names the function it runs, looked up in the
study's :attr:`TrialSettings.kinds` (the built-in training of :mod:`hpsearch.tune.kinds` plus
what the strategy and scheduler declare, :mod:`hpsearch.config.trials`); this module knows no
kind by name. The training kind reports every epoch ``{epoch, repeat, train_loss, val_loss}``
and finishes with the mean band-energy error on the **validation** snapshots
(``val_error_mev_per_atom``), the validation LDOS loss of the best epoch (``val_ldos_mse``, on
every validation point also when ``validation_points`` subsamples the per-epoch ``val_loss``) and
``status`` completed / diverged / failed. The final result also says where the trial's time
went: ``data_seconds`` (the shard data), ``loop_seconds``, ``validation_seconds``,
``evaluation_seconds`` (see :data:`hpsearch.tune.kinds.TIMING_FIELDS`), ``report_seconds`` (the
per-epoch reports) and ``trial_seconds`` (all of it). A trial never sees a test snapshot: the data it gets
hold none (see ``hpsearch.tune.runner``).

A trial never raises: an exception (or an unknown kind) becomes ``status: failed`` with the
reason and the fields the kind gives a failed result, and the study goes on. A failed or
diverged trial reports no band-energy error (never a made-up number); the searcher decides what
that teaches it (see ``searchers/tpe.py``). Data come from the node's shard actor
(``hpsearch.tune.shards``), never through the trial config.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Mapping
from typing import Any

from hpsearch.config.experiment import ExperimentConfig, NaswotConfig, TrainingConfig
from hpsearch.config.trials import TRAIN_KIND, TrialContext, TrialKind
from hpsearch.errors import ConfigError
from hpsearch.tune.kinds import builtin_kinds, collect_trial_kinds

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrialSettings:
    """Everything a trial needs besides its config (small and picklable; no arrays).

    ``kinds`` holds module-level functions (pickled by reference: the workers import them).
    """

    store_path: str
    split: Any  # hpsearch.data.splits.Split
    placement: Any  # hpsearch.tune.shards.ShardPlacement | None
    defaults: dict[str, Any]
    training: TrainingConfig
    naswot: NaswotConfig
    repeats: int
    seed: int
    kinds: Mapping[str, TrialKind] = dataclasses.field(default_factory=builtin_kinds)

    @classmethod
    def from_config(cls, config: ExperimentConfig, store_path: str, split: Any, placement: Any = None,
                    kinds: Mapping[str, TrialKind] | None = None) -> TrialSettings:
        """The settings of `config`'s study; `kinds` default to those its strategy and scheduler declare."""
        if kinds is None:
            kinds = collect_trial_kinds(config.make_strategy(), config.make_scheduler())
        return cls(
            store_path=store_path, split=split, placement=placement,
            defaults=config.hyperparameter_defaults(), training=config.training,
            naswot=config.naswot, repeats=config.repeats, seed=config.seed, kinds=dict(kinds),
        )


def _report(metrics: dict[str, Any]) -> None:
    from ray import tune

    tune.report(metrics)


def _device(settings: TrialSettings) -> str:
    if settings.training.device is not None:
        return settings.training.device
    import ray

    return "cuda" if ray.get_gpu_ids() else "cpu"


def match_threads_to_resources() -> int:
    """Let torch use as many threads as CPUs the trial reserved (at least one); returns the count.

    A worker otherwise inherits the driver's OMP_NUM_THREADS: trials sharing a machine then
    oversubscribe its cores, which made training 20-100x slower on a busy 2-core machine.
    """
    import ray
    import torch

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    threads = max(1, int(cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def _training_data(settings: TrialSettings) -> Any:
    from hpsearch.tune.shards import get_training_data

    return get_training_data(settings.store_path, settings.split, settings.placement, device=_device(settings))


class _Reporter:
    """A trial's reports to Tune; fields kept by the kind go into every later report. Counts the
    seconds spent in reports (each waits for the driver to take the result)."""

    def __init__(self) -> None:
        self.kept: dict[str, Any] = {}
        self.seconds = 0.0

    def report(self, metrics: dict[str, Any]) -> None:
        started = time.perf_counter()
        _report({**metrics, **self.kept})
        self.seconds += time.perf_counter() - started

    def keep(self, fields: dict[str, Any]) -> None:
        self.kept.update(fields)


def _kind_of(config: dict[str, Any], settings: TrialSettings) -> tuple[str, TrialKind | None]:
    name = str(config.get("_kind", TRAIN_KIND))
    return name, settings.kinds.get(name)


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """The Ray Tune function trainable of every study (see the module docstring)."""
    started = time.perf_counter()
    name, kind = _kind_of(config, settings)
    reporter = _Reporter()
    timing: dict[str, float] = {}
    try:
        if kind is None:
            raise ConfigError(f"unknown trial kind {name!r}; this study knows {', '.join(sorted(settings.kinds))}")
        match_threads_to_resources()
        fetched = time.perf_counter()
        data = _training_data(settings)
        timing["data_seconds"] = time.perf_counter() - fetched
        context = TrialContext(
            data=data, defaults=settings.defaults, training=settings.training,
            naswot=settings.naswot, repeats=settings.repeats, seed=settings.seed, device=_device(settings),
            report=reporter.report, keep=reporter.keep,
        )
        final = kind.run(dict(config), context)
    except Exception as exc:  # noqa: BLE001 - a failing trial is recorded, the study goes on
        # (a trial stopped by the scheduler leaves through SystemExit, which is not caught here)
        logger.warning("trial failed: %s\n%s", exc, traceback.format_exc())
        reason = f"{type(exc).__name__}: {exc}"
        final = {"status": "failed", "reason": reason, **(kind.failure(config, reason) if kind is not None else {})}
    # the final report's own wait is not in report_seconds (it ends the trial)
    reporter.report({**final, **timing, "report_seconds": reporter.seconds,
                     "trial_seconds": time.perf_counter() - started})
