"""Studies end to end in a real local Ray on the small dataset: grid, tpe, tpe + NASWOT pruner,
failing trials, the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hpsearch.api import Experiment
from hpsearch.cli import app

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _experiment(store: Path, folder: Path, **changes: object) -> dict:
    return {
        "name": "run", "dataset": {"store": str(store)},
        "search_space": {"width": [8, 16], "n_layers": [1]},
        "fixed": {"max_epochs": 8, "batch_size": 64, "learning_rate": 1e-2, "activation": "ReLU"},
        "strategy": {"name": "grid"}, "budget": {"max_concurrent": 2},
        "resources": {"cpus": 1}, "naswot": {"batch_size": 16}, "seed": 1,
        "storage_path": str(folder), **changes,
    }


def test_grid_through_the_command_line(ray_local, small_store: Path, tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    import yaml

    path.write_text(yaml.safe_dump(_experiment(small_store, tmp_path / "grid-study", repeats=2)))
    runner = CliRunner()
    dry = runner.invoke(app, ["run", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "valid" in dry.output, dry.output
    out = runner.invoke(app, ["run", str(path)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    folder = tmp_path / "grid-study"
    saved = json.loads((folder / "result.json").read_text())
    assert saved["n_trials"] == 2
    result = Experiment.load_result(str(folder))
    frame = result.trials
    assert sorted(frame["width"]) == [8, 16] and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "diverged"}
    done = frame[frame["status"] == "completed"]
    assert not done.empty
    assert (done["val_error_mev_per_atom"] > 0).all() and (done["epochs"] == 16).all()  # 2 repeats x 8 epochs
    # the default objective (ldos_mse) selects: the winner has the lowest validation LDOS loss
    assert result.objective_metric == "val_ldos_mse"
    best = done.loc[done["val_ldos_mse"].idxmin()]
    assert result.best_error_mev_per_atom == pytest.approx(best["val_error_mev_per_atom"])
    assert result.best_config["max_epochs"] == 8 and result.best_config["patience"] == 5
    assert result.core_seconds == pytest.approx(frame["trial_seconds"].sum())  # 1 CPU per trial
    assert result.gpu_seconds == 0.0 and result.wall_seconds > 0
    assert json.loads((folder / "experiment.json").read_text())["name"] == "run"
    shown = runner.invoke(app, ["show", str(folder)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and result.best_trial_id in shown.output
    again = runner.invoke(app, ["run", str(path)])
    assert again.exit_code != 0 and "already exists" in str(again.exception)


def test_tpe_with_naswot_pruner(ray_local, small_store: Path, tmp_path: Path) -> None:
    """Each trial's prune decision matches the quantile rule recomputed from the recorded scores."""
    raw = _experiment(
        small_store, tmp_path / "tpe",
        search_space={"width": [4, 8, 16, 32], "activation": ["ReLU", "Tanh", "Sigmoid"]},
        strategy={"name": "tpe", "options": {"n_startup_trials": 2}},
        scheduler={"name": "naswot-pruner", "options": {"warmup_trials": 1, "quantile": 0.7}},
        budget={"max_trials": 4, "max_concurrent": 1},
    )
    result = Experiment.from_dict(raw).run()
    frame = result.trials
    assert len(frame) == 4 and frame["naswot_score"].notna().all()
    real = [(s, not r) for s, r in zip(frame["naswot_score"], frame["naswot_reason"])]  # (score, is real)
    for i, row in frame.iterrows():
        earlier = [s for s, ok in real[:i] if ok and math.isfinite(s)]
        score, ok = real[i]
        expect_pruned = not ok or (bool(earlier) and score < np.quantile(earlier, 0.7))
        assert (row["status"] == "pruned") == expect_pruned, frame
    pruned = frame[frame["status"] == "pruned"]
    assert pruned["val_error_mev_per_atom"].isna().all() and pruned["training_seconds"].isna().all()
    trained = frame[frame["status"] != "pruned"]
    assert trained["training_seconds"].notna().all()


def test_failing_and_diverging_trials_are_recorded_and_the_study_goes_on(ray_local, small_store: Path, tmp_path: Path) -> None:
    raw = _experiment(
        small_store, tmp_path / "bad",
        search_space={"learning_rate": {"type": "float", "low": 1e-2, "high": 1e6, "levels": [1e-1, 1e6]}},
        fixed={"max_epochs": 8, "batch_size": 64, "optimizer": "sgd", "n_layers": 1, "width": 16},
    )
    result = Experiment.from_dict(raw).run()
    by_lr = {row["learning_rate"]: row for _, row in result.trials.iterrows()}
    assert by_lr[1e6]["status"] == "diverged" and math.isnan(by_lr[1e6]["val_error_mev_per_atom"])
    assert by_lr[1e6]["reason"]
    assert by_lr[1e-1]["status"] == "completed"
    assert result.best_config["learning_rate"] == 1e-1


def test_a_raising_trial_is_recorded_as_failed(ray_local, tmp_path: Path) -> None:
    """A trial whose data cannot be read fails with the reason; the other trials still run."""
    from ray import tune

    from hpsearch.config.experiment import parse_experiment
    from hpsearch.data.splits import Split
    from hpsearch.tune.results import trials_frame
    from hpsearch.tune.trainable import TrialSettings, run_trial
    from hpsearch.tune.tuner import build_tuner

    config = parse_experiment(_experiment(Path("/nonexistent/store.h5"), tmp_path))
    settings = TrialSettings.from_config(config, "/nonexistent/store.h5", Split(("a",), ("b",), ("c",)))
    grid = build_tuner(
        tune.with_parameters(run_trial, settings=settings), config.make_strategy(),
        name="failing", storage_path=tmp_path, max_concurrent=2, resources={"cpu": 0.5},
    ).fit()
    frame = trials_frame(grid)
    assert len(frame) == 2 and not grid.errors
    assert (frame["status"] == "failed").all()
    assert frame["reason"].str.contains("DataError").all() and frame["reason"].str.contains("/nonexistent").all()


def test_more_cpus_per_trial_than_the_cluster_has_is_refused(ray_local, small_store: Path, tmp_path: Path) -> None:
    from hpsearch.errors import ConfigError

    with pytest.raises(ConfigError, match=r"resources.cpus=4.0 per trial but the Ray cluster has 2 CPUs"):
        Experiment.from_dict(_experiment(small_store, tmp_path / "big", resources={"cpus": 4})).run()


def test_training_levers_flow_from_the_experiment_into_the_trials(ray_local, small_store: Path, tmp_path: Path) -> None:
    from ray.tune import Callback

    class Epochs(Callback):
        def __init__(self) -> None:
            self.seen: dict[int, list[dict]] = {}

        def on_trial_result(self, iteration: int, trials: list, trial: object, result: dict, **info: object) -> None:
            self.seen.setdefault(int(trial.config["points_per_epoch"]), []).append(dict(result))  # type: ignore[attr-defined]

    raw = _experiment(small_store, tmp_path / "levers", search_space={"points_per_epoch": [300, 700]},
                      fixed={"max_epochs": 6, "patience": None, "batch_size": 64, "learning_rate": 1e-2,
                             "n_layers": 1, "width": 16, "validation_points": 200})
    callback = Epochs()
    result = Experiment.from_dict(raw).run(callbacks=[callback])
    frame = result.trials
    assert sorted(frame["points_per_epoch"]) == [300, 700] and set(frame["status"]) == {"completed"}
    assert (frame["epochs"] == 6).all() and (frame["val_ldos_mse"] > 0).all()
    for reports in callback.seen.values():
        epochs = [r for r in reports if "epoch" in r and "status" not in r]
        assert [r["epoch"] for r in epochs] == list(range(1, 7))  # ASHA's time attribute: one per epoch
        final = reports[-1]
        assert final["status"] == "completed" and 0 < final["loop_seconds"] < final["trial_seconds"]
        # the per-epoch loss is on the 200 fixed points; the final one (what selects) on all of them
        assert math.isfinite(final["val_ldos_mse"]) and final["val_ldos_mse"] != min(r["val_loss"] for r in epochs)
