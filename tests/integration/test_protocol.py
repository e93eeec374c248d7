"""Validation selects, the test set only reports: the search never sees a test snapshot.

Every strategy runs twice with the same seeds: on the small store, and on a copy whose test
snapshot has a different LDOS. Every trial's metric and the chosen configuration must be equal
bit for bit; only the final test figures may change.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpsearch.api import Experiment
from hpsearch.config.strategy import METRIC
from hpsearch.data import open_store, write_store

pytestmark = [pytest.mark.ray, pytest.mark.slow]

#: (label, strategy, scheduler, search space): every strategy of the paper, tiny budgets
STRATEGIES: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = [
    ("grid", {"name": "grid"}, None, {"width": [8, 16]}),
    ("tpe", {"name": "tpe", "options": {"n_startup_trials": 2}}, None,
     {"width": [8, 16, 32], "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}),
    ("oat", {"name": "oat"}, None, {"n_layers": [1, 2], "activation": ["ReLU", "Tanh"]}),
    ("direct", {"name": "direct"}, None, {"n_layers": [1, 2]}),
    ("naswot", {"name": "naswot", "options": {"chunk_size": 2}}, None, {"n_layers": [1, 2], "width": [8, 16]}),
    ("tpe-pruner", {"name": "tpe", "options": {"n_startup_trials": 2}},
     {"name": "naswot-pruner", "options": {"quantile": 0.5, "warmup_trials": 1}}, {"width": [8, 16, 32]}),
]


@pytest.fixture(scope="module")
def altered_store(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small store with its test snapshot (the last of the default split) changed: LDOS x 1.2,
    descriptors shuffled over the grid. A search that read it would see different numbers."""
    out = tmp_path_factory.mktemp("altered") / "altered.h5"
    with open_store(small_store) as store:
        snapshots = [store.read(name) for name in store.names]
    test = snapshots[-1]
    rng = np.random.default_rng(7)
    flat = test.descriptors.reshape(-1, test.descriptors.shape[-1])
    shuffled = flat[rng.permutation(flat.shape[0])].reshape(test.descriptors.shape)
    snapshots[-1] = dataclasses.replace(test, descriptors=shuffled, ldos=test.ldos * np.float32(1.2))
    write_store(out, snapshots)
    return out


def _experiment(store: Path, folder: Path, label: str, strategy: dict[str, Any], scheduler: dict[str, Any] | None,
                space: dict[str, Any]) -> Experiment:
    raw: dict[str, Any] = {
        "name": f"protocol-{label}",
        "dataset": {"store": str(store), "split": {"train": 2, "validation": 1, "test": 1}},
        "search_space": space, "strategy": strategy,
        "fixed": {"width": 16, "max_epochs": 3, "patience": 2, "batch_size": 64, "learning_rate": 1e-2},
        "naswot": {"batch_size": 16, "n_init": 2},
        "budget": {"max_trials": 5, "max_concurrent": 1}, "retrains": 1, "seed": 3,
        "storage_path": str(folder),
    }
    if scheduler is not None:
        raw["scheduler"] = scheduler
    return Experiment.from_dict(raw)


def _trial_metrics(result: Any) -> list[tuple[str, float]]:
    done = result.trials[result.trials[METRIC].notna()]
    return [(str(c), float(v)) for c, v in zip(done["order"], done[METRIC])]


@pytest.mark.parametrize(("label", "strategy", "scheduler", "space"), STRATEGIES, ids=[s[0] for s in STRATEGIES])
def test_the_search_never_sees_the_test_set(
    ray_local: Any, small_store: Path, altered_store: Path, tmp_path: Path,
    label: str, strategy: dict[str, Any], scheduler: dict[str, Any] | None, space: dict[str, Any],
) -> None:
    original = _experiment(small_store, tmp_path / "original", label, strategy, scheduler, space).run()
    altered = _experiment(altered_store, tmp_path / "altered", label, strategy, scheduler, space).run()
    metrics = _trial_metrics(original)
    assert metrics, f"{label}: no trial reported a validation error"
    assert metrics == _trial_metrics(altered)  # bit for bit: float equality, same order
    assert original.best_config == altered.best_config
    assert original.best_val_error_mev_per_atom == altered.best_val_error_mev_per_atom
    # the retrain is the same network (same seed, same training data) ...
    assert original.final.val_errors == altered.final.val_errors
    # ... and only its test figure moves
    assert math.isfinite(original.test_error_mev_per_atom) and math.isfinite(altered.test_error_mev_per_atom)
    assert original.test_error_mev_per_atom != altered.test_error_mev_per_atom
    assert original.final.val_ldos_rmses == altered.final.val_ldos_rmses
    assert original.test_ldos_rmse is not None and altered.test_ldos_rmse is not None
    assert original.test_ldos_rmse != altered.test_ldos_rmse and original.test_ldos_rmses == [original.test_ldos_rmse]
    # the baselines of the split are fitted on training snapshots: only their test column moves
    assert original.baselines is not None and altered.baselines is not None
    for predictor in ("ridge", "constant"):
        validation = original.baselines.ldos_rmse(predictor, "validation")
        assert validation == altered.baselines.ldos_rmse(predictor, "validation")
        assert original.baselines.ldos_rmse(predictor, "test") != altered.baselines.ldos_rmse(predictor, "test")
    assert original.skill == pytest.approx(original.baselines.ldos_rmse("ridge", "test") / original.test_ldos_rmse)


def test_the_search_data_hold_no_test_snapshot(ray_local: Any, small_store: Path) -> None:
    from hpsearch.tune.runner import prepare_trials
    from hpsearch.tune.shards import get_training_data, release_shards

    experiment = _experiment(small_store, Path("/nonexistent"), "data", *STRATEGIES[0][1:])
    data = prepare_trials(experiment.config)
    try:
        with open_store(small_store) as store:
            test_name = store.names[-1]
        assert data.test_names == (test_name,)
        placement = data.settings.placement
        assert placement.split.test == () and data.settings.split.test == ()
        held = {name for _, names in placement.actors.values() for name in names}
        assert test_name not in held and held == {*placement.split.train, *placement.split.validation}
        served = get_training_data(data.settings.store_path, data.settings.split, placement)
        assert served.test == [] and [s.name for s in served.validation_snapshots] == list(placement.split.validation)
    finally:
        release_shards(data.settings.placement.key)
