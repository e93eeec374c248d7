"""Multi-fidelity studies end to end in a real local Ray on the small dataset: tpe + asha,
naswot-pruner then asha, naswot-halving, hyperband; trials are stopped at rung boundaries."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpsearch.api import Experiment

pytestmark = [pytest.mark.ray, pytest.mark.slow]

MAX_EPOCHS = 9
ASHA = {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3, "max_t": MAX_EPOCHS}}
ASHA_RUNGS = {1, 3}  # grace_period * reduction_factor**i below max_t
#: a small network on 8 atoms may predict a DOS without a Fermi level: 'diverged', a real outcome
FINISHED = {"completed", "stopped", "diverged"}


def _experiment(store: Path, folder: Path, **changes: Any) -> dict[str, Any]:
    return {
        "name": "mf", "dataset": {"store": str(store)},
        "search_space": {
            "width": [4, 8, 16, 32], "n_layers": [1, 2],
            "learning_rate": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
        },
        # patience above max_epochs: a training ends only at max_epochs or when a scheduler stops it
        "fixed": {"max_epochs": MAX_EPOCHS, "patience": 50, "batch_size": 64, "activation": "ReLU"},
        "budget": {"max_trials": 8, "max_concurrent": 1},
        "resources": {"cpus": 1}, "naswot": {"batch_size": 16, "n_init": 2}, "seed": 3,
        "storage_path": str(folder), **changes,
    }


def epochs_reported(folder: Path) -> dict[str, list[int]]:
    """Trial id -> the epochs of its per-epoch reports that Tune processed, in order."""
    out: dict[str, list[int]] = {}
    for result in (folder / "tune").glob("*/result.json"):
        for line in result.read_text().splitlines():
            record = json.loads(line)
            epochs = out.setdefault(record["trial_id"], [])
            if "epoch" in record and "val_loss" in record:
                epochs.append(int(record["epoch"]))
    return out


def _check_asha(frame: pd.DataFrame, epochs: dict[str, list[int]], stopped_status: str = "stopped") -> pd.DataFrame:
    """Stopped trials ended on a rung without a final error; the others trained every epoch."""
    stopped = frame[(frame["status"] == stopped_status) & frame["trial_id"].map(lambda t: bool(epochs[t]))]
    assert not stopped.empty, frame[["status", "learning_rate", "width"]]
    for trial_id in stopped["trial_id"]:
        assert epochs[trial_id] and epochs[trial_id][-1] in ASHA_RUNGS, (trial_id, epochs[trial_id])
    assert stopped["val_error_mev_per_atom"].isna().all()
    completed = frame[frame["status"] == "completed"]
    assert not completed.empty and (completed["epochs"] == MAX_EPOCHS).all()
    for trial_id in completed["trial_id"]:
        assert epochs[trial_id] == list(range(1, MAX_EPOCHS + 1))
    return stopped


def test_tpe_with_asha_stops_trials_at_rungs(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    raw = _experiment(small_store, tmp_path / "tpe-asha", strategy={"name": "tpe", "options": {"n_startup_trials": 4}},
                      scheduler=ASHA)
    result = Experiment.from_dict(raw).run()
    frame = result.trials
    assert len(frame) == 8 and set(frame["status"]) <= FINISHED, frame[["status", "reason"]]
    epochs = epochs_reported(tmp_path / "tpe-asha")
    _check_asha(frame, epochs)
    assert sum(len(e) for e in epochs.values()) < 8 * MAX_EPOCHS  # ASHA saved epochs
    assert result.best_error_mev_per_atom is not None and math.isfinite(result.best_error_mev_per_atom)


def test_naswot_pruner_then_asha(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    pruner = {"name": "naswot-pruner", "options": {"quantile": 0.5, "warmup_trials": 2, "then": ASHA}}
    raw = _experiment(small_store, tmp_path / "pruner-asha", strategy={"name": "random"}, scheduler=pruner)
    frame = Experiment.from_dict(raw).run().trials
    assert len(frame) == 8 and frame["naswot_score"].notna().all()
    assert set(frame["status"]) <= FINISHED | {"pruned"}, frame[["status", "reason"]]
    epochs = epochs_reported(tmp_path / "pruner-asha")
    # the pruner stops a trial on its NASWOT report, before any epoch
    pruned = frame[(frame["status"] == "pruned") & frame["trial_id"].map(lambda t: epochs[t] == [])]
    assert not pruned.empty and pruned["training_seconds"].isna().all()
    # ASHA stops others at a rung: their last report carries the NASWOT score, no error, but an
    # epoch, so the study's trial table lists them as 'stopped', not 'pruned'
    _check_asha(frame, epochs)


def test_naswot_halving_trains_rungs_of_growing_epochs(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    raw = _experiment(
        small_store, tmp_path / "halving",
        search_space={"width": [4, 8, 16, 32], "n_layers": [1, 2], "activation": ["ReLU", "Tanh"],
                      "learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}},
        strategy={"name": "naswot-halving", "options": {
            "chunk_size": 8, "top_k": 4, "min_epochs": 1, "reduction_factor": 2, "optimisation": "tpe",
            "n_startup_trials": 2}},
        fixed={"max_epochs": 4, "patience": 50, "batch_size": 64},
        budget={"max_concurrent": 2},
    )
    result = Experiment.from_dict(raw).run()
    frame = result.trials
    assert list(frame["kind"]) == ["score"] * 2 + ["train"] * 7, frame[["kind", "phase"]]
    assert set(frame["status"]) <= {"completed", "diverged"}, frame[["status", "reason"]]
    train = frame[frame["kind"] == "train"]
    assert list(train["phase"].value_counts().sort_index()) == [4, 2, 1]
    done = train[train["status"] == "completed"]
    for rung, budget in enumerate((1, 2, 4)):
        assert (train.loc[train["phase"] == f"rung-{rung}", "max_epochs"] == budget).all()
        assert (done.loc[done["phase"] == f"rung-{rung}", "epochs"] == budget).all()  # stopped at the rung
    arch = ["width", "n_layers", "activation", "learning_rate"]

    def keys(rows: pd.DataFrame) -> set[tuple]:
        return {tuple(r) for r in rows[arch].itertuples(index=False)}

    rung0, rung1, rung2 = (train[train["phase"] == f"rung-{i}"] for i in range(3))
    # the best half of the completed trainings on the objective (the default: the validation LDOS
    # loss) goes on (a diverged one has no error and stays behind)
    assert keys(rung1) == keys(rung0.nsmallest(2, "val_ldos_mse"))
    assert keys(rung2) == keys(rung1.nsmallest(1, "val_ldos_mse"))
    assert rung0["learning_rate"].nunique() == 4  # TPE drew the settings of each rung-0 training
    assert result.core_seconds > 0


def test_hyperband_stops_trials_and_restarts_paused_ones(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    """Ray's Hyperband fills its brackets in order: 3 trials at 4 epochs (no halving), 3 halved at
    2 epochs, 4 halved at 1 and 2; every trial is created at once (max_concurrent 10) so that the
    brackets fill. A paused trial trains again from epoch 1 (no checkpoints)."""
    scheduler = {"name": "hyperband", "options": {"reduction_factor": 2, "max_t": 4}}
    raw = _experiment(small_store, tmp_path / "hyperband", strategy={"name": "random"}, scheduler=scheduler,
                      budget={"max_trials": 10, "max_concurrent": 10}, resources={"cpus": 0.5},
                      fixed={"max_epochs": 4, "patience": 50, "batch_size": 64, "activation": "ReLU"})
    frame = Experiment.from_dict(raw).run().trials
    assert len(frame) == 10 and set(frame["status"]) <= FINISHED, frame[["status", "reason"]]
    epochs = epochs_reported(tmp_path / "hyperband")
    assert all(e and max(e) <= 4 for e in epochs.values()), epochs
    stopped = frame[frame["status"] == "stopped"]
    assert not stopped.empty, epochs
    assert all(epochs[t][-1] in (1, 2) for t in stopped["trial_id"]), epochs
    restarted = [e for e in epochs.values() if e.count(1) > 1]
    assert all(e[e.index(1, 1):] == list(range(1, len(e) - e.index(1, 1) + 1)) for e in restarted), epochs
