"""Training the architectures of a proxy study, in this process or in worker processes.

Each architecture is trained with early stopping on the training snapshots and evaluated on the
validation snapshots: the LDOS RMSE (the loss MALA optimises; the mean over the validation
snapshots of each one's RMSE over all its points and energies, in the LDOS's units) and the mean
band-energy error (meV/atom). With ``workers > 1`` a spawned process
pool trains several at once, one torch thread each; every worker reads the store once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hpsearch.data.splits import Split
    from hpsearch.model import NetworkSpec, TestSnapshot, TrainingData, TrainingSettings

__all__ = ["train_architectures", "train_one"]

log = logging.getLogger(__name__)

#: What a worker process loaded once (its data); set by the pool initialiser in the worker only.
_WORKER: dict[str, Any] = {}


def train_one(spec: NetworkSpec, settings: TrainingSettings, data: TrainingData,
              val: Sequence[TestSnapshot], test: Sequence[TestSnapshot] = ()) -> dict[str, Any]:
    """Train ``spec``; its parameter count, validation errors, status, epochs and seconds (and the
    test errors when ``test`` snapshots are given: a calibration report, after training)."""
    from hpsearch.model import count_parameters, evaluate, train

    result = train(spec, settings, data)
    errors: tuple[float, ...] = ()
    rmses: tuple[float, ...] = ()
    tested: dict[str, float] = {}
    if result.ok:
        evaluation = evaluate(result.model, result.scalers, list(val))
        errors = tuple(evaluation.band_energy_errors_mev_per_atom)
        rmses = tuple(evaluation.ldos_rmse)
        if test:
            on_test = evaluate(result.model, result.scalers, list(test))
            tested = {"test_ldos_rmse": on_test.mean_ldos_rmse,
                      "test_error_mev_per_atom": on_test.mean_band_energy_error_mev_per_atom}
    return {"n_params": count_parameters(result.model), "val_errors_mev_per_atom": errors,
            "val_error_mev_per_atom": float(np.mean(errors)) if errors else math.nan,
            "val_ldos_rmses": rmses, "val_ldos_rmse": float(np.mean(rmses)) if rmses else math.nan,
            "train_status": result.status, "epochs": result.epochs, "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 3), **tested}


def validation_snapshots(store_path: str | Path, names: tuple[str, ...]) -> list[TestSnapshot]:
    """The validation snapshots whole, with what the band energy needs (evaluated like test ones)."""
    from hpsearch.data.store import open_store
    from hpsearch.model.data import TestSnapshot, as_tensor, read_points, snapshot_metadata

    with open_store(store_path) as store:
        snaps = []
        for name in names:
            x, y = read_points(store, [name])
            snaps.append(TestSnapshot(descriptors=as_tensor(x), ldos=as_tensor(y), **snapshot_metadata(store, name)))
    return snaps



def _init_worker(store_path: str, split: Split, test_names: tuple[str, ...] = ()) -> None:
    import torch

    from hpsearch.model import TrainingData

    torch.set_num_threads(1)
    _WORKER["data"] = TrainingData.from_store(store_path, split)
    _WORKER["val"] = validation_snapshots(store_path, tuple(split.validation))
    _WORKER["test"] = validation_snapshots(store_path, test_names) if test_names else []


def _train_in_worker(spec: NetworkSpec, settings: TrainingSettings) -> dict[str, Any]:
    return train_one(spec, settings, _WORKER["data"], _WORKER["val"], _WORKER["test"])


def train_architectures(specs: Sequence[NetworkSpec], config: Any, store_path: str | Path, split: Split,
                        data: TrainingData, val: Sequence[TestSnapshot],
                        progress: Callable[[str, int, int], None] | None = None,
                        test_names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One result per spec, in the order of ``specs``; ``test_names``: snapshots each trained network
    is evaluated on once after training (the calibration report's test check; empty: none read)."""
    settings = config.settings()
    test = validation_snapshots(store_path, test_names) if test_names and config.workers <= 1 else []
    rows: list[dict[str, Any] | None] = [None] * len(specs)

    def done(index: int, row: dict[str, Any], count: int) -> None:
        rows[index] = row
        spec = specs[index]
        log.info("architecture %d/%d (%d done) %s %s: %s after %d epochs, validation LDOS RMSE %.4g, band-energy "
                 "error %.3f meV/atom", index + 1, len(specs), count, "x".join(map(str, spec.widths)),
                 spec.hidden_activations[0], row["train_status"], row["epochs"], row["val_ldos_rmse"],
                 row["val_error_mev_per_atom"])
        if progress:
            progress("training", count, len(specs))

    if config.workers <= 1:
        for index, spec in enumerate(specs):
            done(index, train_one(spec, settings, data, val, test), index + 1)
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=config.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(str(store_path), split, test_names)) as pool:
            futures = {pool.submit(_train_in_worker, spec, settings): i for i, spec in enumerate(specs)}
            for count, future in enumerate(as_completed(futures), start=1):
                done(futures[future], future.result(), count)
    return [row for row in rows if row is not None]
