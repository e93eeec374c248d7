"""Resume of an interrupted study: it goes on where it stopped and no trial runs twice.

Interruptions: Tune's own Ctrl+C path inside the test process (grid, and TPE with the NASWOT
pruner), and SIGTERM to a real ``hpsearch run`` process (a cluster job being stopped).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hpsearch.config.experiment import parse_experiment
from hpsearch.testing.conformance import trial_starts
from hpsearch.tune.runner import resume_study, run_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _raw(store: Path, root: Path, name: str, **changes: object) -> dict:
    return {
        "name": name, "dataset": {"store": str(store)},
        "search_space": {"width": [4, 8, 16, 32, 64], "n_layers": [1]},
        "fixed": {"max_epochs": 3, "batch_size": 128, "learning_rate": 1e-2},
        "strategy": {"name": "grid"}, "budget": {"max_concurrent": 1},
        "resources": {"cpus": 1}, "naswot": {"batch_size": 16},
        "storage_path": str(root / name), **changes,
    }


def _finished(frame: pd.DataFrame) -> set[str]:
    return set(frame.loc[frame["status"].isin(["completed", "diverged", "failed", "pruned"]), "trial_id"])


def _check_no_trial_twice(folder: Path, expected: int, finished_before: set[str]) -> None:
    """All trials ran, ids unique, and no trial finished before the interruption started again."""
    frame = pd.read_csv(folder / "trials.csv")
    assert len(frame) == expected, frame
    assert frame["trial_id"].is_unique
    assert _finished(frame) == set(frame["trial_id"]), frame
    starts = trial_starts(folder / "tune")
    assert set(starts) == set(frame["trial_id"])
    assert all(starts[t] == 1 for t in finished_before), starts


def _finished_in_tune(tune_dir: Path) -> bool:
    """Whether any trial has written its final report yet."""
    return any('"status"' in p.read_text() for p in tune_dir.glob("*/result.json"))


def test_grid_resumes_where_it_stopped(ray_local, small_store: Path, tmp_path: Path) -> None:
    config = parse_experiment(_raw(small_store, tmp_path, "grid"))
    first = run_study(config, interrupt_after_trials=2)
    done_before = first.trials[first.trials["status"] == "completed"]
    assert 2 <= len(done_before) < 5, first.trials
    before = {r["trial_id"]: r["val_error_mev_per_atom"] for _, r in done_before.iterrows()}
    result = resume_study("grid", results_root=tmp_path)
    frame = result.trials
    assert sorted(frame["width"]) == [4, 8, 16, 32, 64]
    _check_no_trial_twice(tmp_path / "grid", 5, set(before))
    after = {r["trial_id"]: r["val_error_mev_per_atom"] for _, r in frame.iterrows()}
    assert all(after[t] == pytest.approx(e) for t, e in before.items())  # kept, not retrained
    assert result.wall_seconds > first.wall_seconds


def test_tpe_with_pruner_resumes_with_its_state(ray_local, small_store: Path, tmp_path: Path) -> None:
    raw = _raw(
        small_store, tmp_path, "tpe",
        search_space={"width": {"type": "int", "low": 4, "high": 64, "log": True}, "activation": ["ReLU", "Tanh"]},
        strategy={"name": "tpe", "options": {"n_startup_trials": 2}},
        scheduler={"name": "naswot-pruner", "options": {"warmup_trials": 2, "quantile": 0.3}},
        budget={"max_trials": 5, "max_concurrent": 1},
    )
    first = run_study(parse_experiment(raw), interrupt_after_trials=2)
    finished_before = _finished(first.trials)
    assert 2 <= len(finished_before) < 5
    result = resume_study("tpe", results_root=tmp_path)
    _check_no_trial_twice(tmp_path / "tpe", 5, finished_before)
    configs = {(r["width"], r["activation"]) for _, r in result.trials.iterrows()}
    assert len(configs) >= 3  # the restored sampler went on instead of starting over
    assert result.trials["naswot_score"].notna().all()


def test_sigterm_to_hpsearch_run_then_resume(ray_local, small_store: Path, tmp_path: Path) -> None:
    """A study stopped by SIGTERM (e.g. a cluster job ending) saves its state; resume finishes it."""
    path = tmp_path / "e.yaml"
    # trials of a few seconds each (30 epochs took 0.3 s on a quiet machine, so all five could
    # finish between the first final report and the signal)
    path.write_text(yaml.safe_dump(_raw(small_store, tmp_path, "killed", fixed={"max_epochs": 300, "batch_size": 64,
                                                                          "patience": 300})))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "hpsearch"), "run", str(path)], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not _finished_in_tune(tmp_path / "killed" / "tune"):
            assert process.poll() is None, "hpsearch run ended before it was interrupted"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
    finished_before = _finished(pd.read_csv(tmp_path / "killed" / "trials.csv"))
    assert 1 <= len(finished_before) < 5
    result = resume_study("killed", results_root=tmp_path)
    _check_no_trial_twice(tmp_path / "killed", 5, finished_before)
    assert result.trials["val_error_mev_per_atom"].notna().sum() >= 1
