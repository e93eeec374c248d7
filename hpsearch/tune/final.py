"""After the search: retrain the winner with new seeds, and fit the baselines of the split; the only
steps that read the test snapshots.

The paper trains every method's winner several times with different initialisations and reports
the mean and standard deviation of the band-energy error. Here each retrain is a Ray task with
the study's per-trial resources (so on a cluster with GPUs the retrains run on GPU workers, never
in the driver), fed by the same shard actors as the trials. Each retrain is evaluated on the
validation snapshots and then, once, on the test snapshots, which it reads from the store
itself: the search's data never held them. The model that is saved (and logged to MLflow) is
the retrain with the best **validation** error; the test errors only report. Each retrain reports
its band-energy errors (mean and signed per snapshot) and its LDOS RMSE, the low-noise metric.
The ridge and constant-mean baselines of the split (:func:`study_baselines`) are fitted in the
driver, in chunks, and put the winner's test LDOS RMSE in proportion (:func:`check_skill`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.config.experiment import ExperimentConfig, network_spec, training_settings
from hpsearch.errors import HpsearchError

logger = logging.getLogger(__name__)

FINAL_MODEL = "final_model.pt"
#: Retrain seeds are ``RETRAIN_SEED_OFFSET * (seed + 1) + i``: far from every seed a trial uses
#: (``seed + _seed + repeat``, with ``_seed`` a trial counter), and disjoint between studies whose
#: search seeds differ (the repeats of a benchmark), so their retrains are independent draws.
RETRAIN_SEED_OFFSET = 10_000


@dataclass
class FinalEvaluation:
    """The winner retrained with `seeds`: per seed its validation and test error (meV/atom, NaN
    when that training failed) and LDOS RMSE (the store's LDOS units; the low-noise metric), the
    signed band-energy error of each snapshot (predicted - reference, meV/atom), the test
    means/stds, which retrain was kept, and the compute spent."""

    seeds: list[int]
    test_errors: list[float]
    val_errors: list[float]
    statuses: list[str]
    n_parameters: int
    architecture: dict[str, Any]
    #: index (into `seeds`) of the saved retrain: the best validation error
    chosen: int | None = None
    model_path: Path | None = None
    core_seconds: float = 0.0
    gpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    test_snapshots: list[str] = field(default_factory=list)
    test_ldos_rmses: list[float] = field(default_factory=list)
    val_ldos_rmses: list[float] = field(default_factory=list)
    #: per seed, per test (validation) snapshot: predicted - reference band energy, meV/atom
    test_signed_errors_mev_per_atom: list[list[float]] = field(default_factory=list)
    val_signed_errors_mev_per_atom: list[list[float]] = field(default_factory=list)

    @property
    def test_mean(self) -> float:
        return _mean(self.test_errors)

    @property
    def test_std(self) -> float:
        return _std(self.test_errors)

    @property
    def test_ldos_rmse(self) -> float:
        """Mean over the retrains of the test LDOS RMSE (NaN when none finished)."""
        return _mean(self.test_ldos_rmses)

    @property
    def test_ldos_rmse_std(self) -> float:
        return _std(self.test_ldos_rmses)

    # the names the paper's table and older result files use
    mean = test_mean
    std = test_std

    @property
    def values(self) -> list[float]:
        return self.test_errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds, "test_errors_mev_per_atom": self.test_errors,
            "val_errors_mev_per_atom": self.val_errors, "statuses": self.statuses,
            "mean": self.test_mean, "std": self.test_std, "values": self.test_errors,
            "chosen": self.chosen, "chosen_seed": self.seeds[self.chosen] if self.chosen is not None else None,
            "n_parameters": self.n_parameters, "architecture": self.architecture,
            "model_path": str(self.model_path) if self.model_path else None,
            "retrain_core_s": self.core_seconds, "retrain_gpu_s": self.gpu_seconds,
            "retrain_wall_s": self.wall_seconds, "test_snapshots": self.test_snapshots,
            "test_ldos_rmses": self.test_ldos_rmses, "val_ldos_rmses": self.val_ldos_rmses,
            "test_ldos_rmse": self.test_ldos_rmse, "test_ldos_rmse_std": self.test_ldos_rmse_std,
            "test_signed_errors_mev_per_atom": self.test_signed_errors_mev_per_atom,
            "val_signed_errors_mev_per_atom": self.val_signed_errors_mev_per_atom,
        }


def _mean(values: list[float]) -> float:
    good = [v for v in values if math.isfinite(v)]
    return float(np.mean(good)) if good else math.nan


def _std(values: list[float]) -> float:
    """Sample std of the finite values (0 for one, NaN for none)."""
    good = [v for v in values if math.isfinite(v)]
    return float(np.std(good, ddof=1)) if len(good) > 1 else (0.0 if good else math.nan)


def retrain_seeds(config: ExperimentConfig, n: int) -> list[int]:
    """The seeds of the `n` retrains: never the seeds of the search's trials."""
    if n > RETRAIN_SEED_OFFSET:
        raise ValueError(f"retrains={n}: at most {RETRAIN_SEED_OFFSET} retrains keep the seeds of studies apart")
    return [RETRAIN_SEED_OFFSET * (config.seed + 1) + i for i in range(n)]


def retrain_one(params: dict[str, Any], seed: int, settings: Any, test_names: list[str]) -> dict[str, Any]:
    """One retrain (runs as a Ray task): train on the shard actors' data, evaluate on validation,
    then on the test snapshots read from the store. Returns plain values and the model's state."""
    from hpsearch.model import evaluate, train
    from hpsearch.tune.trainable import _device, _training_data, match_threads_to_resources

    started = time.perf_counter()
    match_threads_to_resources()
    data = _training_data(settings)
    spec = network_spec(params, data.n_features, data.n_energies)
    result = train(spec, training_settings(params, settings.training, seed), data, device=_device(settings))
    out: dict[str, Any] = {"seed": seed, "status": result.status, "reason": result.reason or "",
                           "val_error": math.nan, "test_error": math.nan, "val_ldos_rmse": math.nan,
                           "test_ldos_rmse": math.nan, "val_signed": [], "test_signed": [], "state": None,
                           "epochs": result.epochs}
    if result.ok:
        val = evaluate(result.model, result.scalers, data.validation_snapshots)
        test = evaluate(result.model, result.scalers, _test_snapshots(settings.store_path, data, test_names))
        for part, ev in (("val", val), ("test", test)):
            out[f"{part}_error"] = float(ev.mean_band_energy_error_mev_per_atom)
            out[f"{part}_ldos_rmse"] = float(ev.mean_ldos_rmse)
            out[f"{part}_signed"] = [float(v) for v in ev.signed_band_energy_errors_mev_per_atom]
        out["state"] = result.state()
        if not math.isfinite(out["val_error"]):
            out["status"] = "diverged"
    out["seconds"] = time.perf_counter() - started
    return out


def _test_snapshots(store_path: str, data: Any, names: list[str]) -> list[Any]:
    """The test snapshots as the data path reads: whole in memory, or in chunks when the split streams."""
    from hpsearch.model.data import load_snapshots
    from hpsearch.model.streaming import StoreReader, StreamedData, StreamedSnapshot

    if isinstance(data, StreamedData):
        reader = StoreReader(store_path)
        return [StreamedSnapshot(reader=reader, n_energies=data.n_energies, **reader.metadata(n)) for n in names]
    return load_snapshots(store_path, names)


def retrain_winner(
    config: ExperimentConfig, best_config: dict[str, Any], settings: Any, test_names: list[str],
    folder: Path, n: int,
) -> tuple[FinalEvaluation, Any]:
    """Train `best_config` with `n` fresh seeds as parallel Ray tasks, each tested once.

    `settings` are the search's :class:`~hpsearch.tune.trainable.TrialSettings` (data without
    test snapshots); `test_names` the test snapshots of the experiment's split. Returns the
    evaluation and the kept model (a :class:`~hpsearch.model.training.LoadedModel`, None when
    every retrain failed), also saved as ``final_model.pt`` in `folder`.
    """
    import ray
    import torch

    from hpsearch.model.training import load_model

    params = {**config.hyperparameter_defaults(), **best_config}
    seeds = retrain_seeds(config, n)
    cpus, gpus = float(config.resources.cpus), float(config.resources.gpus)
    task = ray.remote(retrain_one).options(num_cpus=cpus, num_gpus=gpus, max_retries=2)
    started = time.perf_counter()
    pending = {task.remote(params, seed, settings, list(test_names)): seed for seed in seeds}
    outcomes: dict[int, dict[str, Any]] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        seed = pending.pop(done[0])
        outcomes[seed] = ray.get(done[0])
        o = outcomes[seed]
        logger.info("retrain %d/%d (seed %d): %s, validation %.4g, test %.4g meV/atom, test LDOS RMSE %.4g",
                    len(outcomes), n, seed, o["status"], o["val_error"], o["test_error"], o["test_ldos_rmse"])
    ordered = [outcomes[s] for s in seeds]
    final = _final_evaluation(seeds, ordered, test_names)
    seconds = sum(float(o["seconds"]) for o in ordered)
    final.core_seconds, final.gpu_seconds = seconds * cpus, seconds * gpus
    final.wall_seconds = time.perf_counter() - started
    _describe_architecture(final, ordered)
    kept = None
    if final.chosen is not None:
        folder.mkdir(parents=True, exist_ok=True)
        final.model_path = folder / FINAL_MODEL
        torch.save(ordered[final.chosen]["state"], final.model_path)
        kept = load_model(final.model_path)
    return final, kept


def _final_evaluation(seeds: list[int], ordered: list[dict[str, Any]], test_names: list[str]) -> FinalEvaluation:
    """The retrains' outcomes (in seed order) as a FinalEvaluation; a retrain without a finite
    validation error counts as failed (NaN test values, no signed errors); the best validation is kept."""
    val_errors = [float(o["val_error"]) if o["status"] == "completed" else math.nan for o in ordered]
    finite = [i for i, v in enumerate(val_errors) if math.isfinite(v)]

    def kept(key: str) -> list[Any]:
        failed: Any = [] if key.endswith("signed") else math.nan
        return [o[key] if math.isfinite(v) else failed for o, v in zip(ordered, val_errors)]

    return FinalEvaluation(
        seeds=seeds, val_errors=val_errors, test_errors=[float(v) for v in kept("test_error")],
        statuses=[str(o["status"]) for o in ordered], n_parameters=0, architecture={},
        chosen=min(finite, key=lambda i: val_errors[i]) if finite else None, test_snapshots=list(test_names),
        test_ldos_rmses=[float(v) for v in kept("test_ldos_rmse")],
        val_ldos_rmses=[float(v) for v in kept("val_ldos_rmse")],
        test_signed_errors_mev_per_atom=kept("test_signed"), val_signed_errors_mev_per_atom=kept("val_signed"),
    )


def _describe_architecture(final: FinalEvaluation, ordered: list[dict[str, Any]]) -> None:
    """Parameter count and layers of the winner, from the first retrain that returned a model."""
    from hpsearch.model import build_network, count_parameters
    from hpsearch.model.network import NetworkSpec

    first = next((o for o in ordered if o["state"] is not None), None)
    if first is None:
        return
    spec = NetworkSpec.model_validate_json(first["state"]["spec"])
    final.n_parameters = count_parameters(build_network(spec, seed=0))
    final.architecture = {"n_in": spec.n_in, "widths": list(spec.widths),
                          "activations": list(spec.hidden_activations), "n_out": spec.n_out}


def study_baselines(config: ExperimentConfig, store_path: str | Path, split: Any) -> Any:
    """Ridge and constant-mean baselines of a study's whole split (a
    :class:`~hpsearch.model.baselines.BaselineReport`) with the study's descriptor and LDOS
    scaling, fitted on its training snapshots. Run after the search, like the retrains (they
    read the test snapshots); None, with a warning, when they cannot be computed."""
    from hpsearch.model.baselines import store_baselines

    try:
        training = config.training
        report = store_baselines(store_path, split, descriptor_mode=training.descriptor_scaling,  # type: ignore[arg-type]
                                 ldos_mode=training.ldos_scaling)  # type: ignore[arg-type]
    except HpsearchError as exc:
        logger.warning("study %s has no baselines: %s", config.name, exc)
        return None
    logger.info("baselines of the split: ridge test LDOS RMSE %.4g (%.3g meV/atom), constant %.4g (%.3g meV/atom)",
                report.ldos_rmse("ridge", "test"), report.band_energy_error_mev_per_atom("ridge", "test"),
                report.ldos_rmse("constant", "test"), report.band_energy_error_mev_per_atom("constant", "test"))
    return report


def check_skill(result: Any) -> None:
    """Log a study result's skill over ridge; a warning when its winner does not beat ridge."""
    skill = result.skill
    if skill is None:
        return
    if skill <= 1.0:
        logger.warning("study %s: the retrained winner does not beat ridge regression (test LDOS RMSE %.4g vs "
                       "ridge %.4g, skill %.3g <= 1): on this data the architecture may not matter, and a ranking "
                       "of networks may be seed noise", result.name, result.test_ldos_rmse,
                       result.ridge_test_ldos_rmse, skill)
    else:
        logger.info("study %s: skill of the winner over ridge regression (test LDOS RMSE ratio) %.3g", result.name,
                    skill)
