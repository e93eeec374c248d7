"""The trial: what one Ray Tune trial of a study does, following the trial protocol.

- ``_kind: train`` (default): optionally report the NASWOT mean score first (``_naswot``), then
  train ``repeats`` networks (seeds ``seed + _seed + r``), reporting every epoch
  ``{epoch, repeat, train_loss, val_loss}``, and finish with the mean band-energy error on the
  **validation** snapshots (``val_error_mev_per_atom``), the validation LDOS loss of the best
  epoch (``val_ldos_mse``) and ``status`` completed / diverged / failed. A trial never sees a
  test snapshot: the data it gets hold none (see ``hpsearch.tune.runner``).
- ``_kind: score``: NASWOT-score every architecture of ``_candidates`` in one trial (one
  Ray trial per chunk of candidates, not per candidate: Ray's per-trial overhead is ~0.25 s
  even with reused actors) and report the scores in order; no training.

A trial never raises: an exception becomes ``status: failed`` with the reason, and the study
goes on. A failed or diverged trial reports no band-energy error (never a made-up number);
the searcher decides what that teaches it (see ``searchers/tpe.py``). Data come from the
node's shard actor (``hpsearch.tune.shards``), never through the trial config.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import traceback
from typing import Any

from hpsearch.config.experiment import ExperimentConfig, NaswotConfig, TrainingConfig, network_spec, training_settings
from hpsearch.config.strategy import LDOS_METRIC, METRIC, NASWOT_METRIC, STD_METRIC

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrialSettings:
    """Everything a trial needs besides its config (small and picklable; no arrays)."""

    store_path: str
    split: Any  # hpsearch.data.splits.Split
    placement: Any  # hpsearch.tune.shards.ShardPlacement | None
    defaults: dict[str, Any]
    training: TrainingConfig
    naswot: NaswotConfig
    repeats: int
    seed: int

    @classmethod
    def from_config(cls, config: ExperimentConfig, store_path: str, split: Any, placement: Any = None) -> TrialSettings:
        return cls(
            store_path=store_path, split=split, placement=placement,
            defaults=config.hyperparameter_defaults(), training=config.training,
            naswot=config.naswot, repeats=config.repeats, seed=config.seed,
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


def trial_parameters(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The full hyperparameters of a trial: defaults, overridden by the trial's own values."""
    return {**defaults, **{k: v for k, v in config.items() if not k.startswith("_")}}


def _naswot_batch(data: Any, settings: TrialSettings, params: dict[str, Any]) -> Any:
    from hpsearch.scoring.experiment import naswot_batch

    base = training_settings(params, settings.training, settings.seed)
    return naswot_batch(data, base, settings.naswot.batch_size, settings.seed)


def _score_candidates(config: dict[str, Any], settings: TrialSettings, data: Any) -> dict[str, Any]:
    from hpsearch.scoring import score_architectures

    candidates = [trial_parameters(dict(c), settings.defaults) for c in config.get("_candidates", [])]
    specs = [network_spec(c, data.n_features, data.n_energies) for c in candidates]
    batch = _naswot_batch(data, settings, settings.defaults)
    options = settings.naswot
    results = score_architectures(
        specs, batch, n_init=options.n_init, seed=settings.seed, k=options.k,
        convention=options.convention, progress=False,
    )
    scores = [float(r.score) for r in results]
    finite = [s for s in scores if math.isfinite(s)]
    return {
        # as JSON text: Tune's TensorBoard logger refuses lists (a warning per trial) and skips strings
        "naswot_scores": json.dumps(scores),
        "naswot_reasons": json.dumps([r.reason or "" for r in results]),
        NASWOT_METRIC: max(finite) if finite else float("nan"),
        "n_candidates": len(scores),
        "status": "completed",
    }


def _naswot_first(spec: Any, settings: TrialSettings, data: Any, params: dict[str, Any]) -> dict[str, Any]:
    from hpsearch.scoring import naswot_mean_score

    options = settings.naswot
    result = naswot_mean_score(
        spec, _naswot_batch(data, settings, params), n_init=options.n_init, seed=settings.seed,
        k=options.k, convention=options.convention,
    )
    return {NASWOT_METRIC: float(result.score), "naswot_reason": result.reason or ""}


def _train_repeats(config: dict[str, Any], settings: TrialSettings, data: Any, extra: dict[str, Any]) -> dict[str, Any]:
    from hpsearch.model import build_network, count_parameters, evaluate, train

    params = trial_parameters(config, settings.defaults)
    spec = network_spec(params, data.n_features, data.n_energies)
    device = _device(settings)
    errors: list[float] = []
    losses: list[float] = []
    status, reason, seconds, epochs = "completed", "", 0.0, 0
    for repeat in range(settings.repeats):
        seed = settings.seed + int(config.get("_seed", 0)) + repeat
        offset = epochs

        def on_epoch(epoch: int, train_loss: float, val_loss: float, repeat: int = repeat, offset: int = offset) -> bool:
            _report({"epoch": offset + epoch, "repeat": repeat, "train_loss": train_loss, "val_loss": val_loss, **extra})
            return False

        result = train(spec, training_settings(params, settings.training, seed), data, on_epoch=on_epoch, device=device)
        seconds += result.seconds
        epochs += result.epochs
        if not result.ok:
            status, reason = result.status, result.reason or ""
            break
        error = evaluate(result.model, result.scalers, data.validation_snapshots).mean_band_energy_error_mev_per_atom
        if not math.isfinite(error):
            status, reason = "diverged", "the predicted DOS gives no finite band energy on a validation snapshot"
            break
        errors.append(float(error))
        losses.append(float(result.best_val_loss))
        reason = result.reason or ""
    final: dict[str, Any] = {
        "status": status, "reason": reason, "training_seconds": seconds, "epochs": epochs,
        "n_parameters": count_parameters(build_network(spec, seed=0)), "repeats_done": len(errors), **extra,
    }
    if status == "completed":
        final[METRIC] = sum(errors) / len(errors)
        final[LDOS_METRIC] = sum(losses) / len(losses)
        final[STD_METRIC] = _sample_std(errors)
    return final


def _sample_std(values: list[float]) -> float:
    """Sample standard deviation (ddof=1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _training_data(settings: TrialSettings) -> Any:
    from hpsearch.tune.shards import get_training_data

    return get_training_data(settings.store_path, settings.split, settings.placement, device=_device(settings))


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """The Ray Tune function trainable of every study (see the module docstring)."""
    started = time.perf_counter()
    kind = config.get("_kind", "train")
    extra: dict[str, Any] = {}
    try:
        match_threads_to_resources()
        data = _training_data(settings)
        if kind == "score":
            _report({**_score_candidates(config, settings, data), "trial_seconds": time.perf_counter() - started})
            return
        if config.get("_naswot"):
            params = trial_parameters(config, settings.defaults)
            extra = _naswot_first(network_spec(params, data.n_features, data.n_energies), settings, data, params)
            _report({**extra, "phase": "naswot"})
        final = _train_repeats(config, settings, data, extra)
    except Exception as exc:  # noqa: BLE001 - a failing trial is recorded, the study goes on
        # (a trial stopped by the scheduler leaves through SystemExit, which is not caught here)
        logger.warning("trial failed: %s\n%s", exc, traceback.format_exc())
        final = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", **extra}
        if kind == "score":
            n = len(config.get("_candidates", []))
            final.update(naswot_scores=json.dumps([float("nan")] * n), naswot_reasons=json.dumps([final["reason"]] * n),
                         n_candidates=n)
    _report({**final, "trial_seconds": time.perf_counter() - started})
