"""The training's cost levers: ``points_per_epoch`` (a seeded random subsample per epoch) and
``validation_points`` (per-epoch validation on a fixed subsample, final numbers on every point),
in the training loop, in the experiment YAML and in a trial."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pydantic
import pytest
import torch
import yaml

from hpsearch.config.experiment import load_experiment, parse_experiment, training_settings, validate_experiment
from hpsearch.config.strategy import LDOS_METRIC, METRIC
from hpsearch.config.trials import trial_parameters
from hpsearch.errors import ConfigError
from hpsearch.model import NetworkSpec, TrainingData, TrainingSettings, evaluate, train, validation_loss
from hpsearch.model.sources import (
    VALIDATION_SAMPLE_SEED, chunk_plan, chunked_permutation, validation_sample_rows,
)
from hpsearch.tune import trainable
from hpsearch.tune.study_tracking import study_params
from hpsearch.tune.trainable import TrialSettings, run_trial


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the machine is shared; results do not depend on it


def _indexed(n_train: int = 1000, n_val: int = 400) -> TrainingData:
    """Points whose first feature is their own row number (to see which points a batch holds)."""
    x = torch.arange(n_train, dtype=torch.float32)[:, None].repeat(1, 3)
    xv = torch.arange(n_val, dtype=torch.float32)[:, None].repeat(1, 3)
    return TrainingData(x, torch.sin(x[:, :2]), xv, torch.sin(xv[:, :2]))


def _epoch_rows(data: TrainingData, generator: torch.Generator, n_points: int | None, batch: int = 64) -> list[int]:
    return [int(v) for xb, _ in data.train_batches(batch, generator, n_points) for v in xb[:, 0].tolist()]


def _synthetic(n: int = 4000, seed: int = 0) -> TrainingData:
    """A smooth map from 8 features to 5 outputs; 3/4 training, 1/4 validation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g) * torch.tensor([1.0, 2.0, 5.0, 0.5, 1.0, 1.0, 3.0, 1.0]) + 4.0
    w = torch.randn(8, 5, generator=g) * 0.3
    y = torch.sigmoid((x - 4.0) @ w) + 0.1
    cut = 3 * n // 4
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:])


SPEC = NetworkSpec(n_in=8, n_out=5, widths=(32, 32), activations="Tanh")


# -- the subsample of an epoch ---------------------------------------------------------------------
@pytest.mark.parametrize("chunk_points", [None, 96])
def test_points_per_epoch_is_a_seeded_subsample_without_replacement(chunk_points: int | None) -> None:
    data = _indexed()
    data.chunk_points = chunk_points
    gen = torch.Generator().manual_seed(4)
    epochs = [_epoch_rows(data, gen, 250) for _ in range(3)]
    for rows in epochs:
        assert len(rows) == 250 and len(set(rows)) == 250 and all(0 <= r < 1000 for r in rows)
    assert len({tuple(sorted(rows)) for rows in epochs}) == 3  # a different subsample every epoch
    again = torch.Generator().manual_seed(4)
    assert [_epoch_rows(data, again, 250) for _ in range(3)] == epochs  # same seed, same points
    other = torch.Generator().manual_seed(5)
    assert _epoch_rows(data, other, 250) != epochs[0]
    # as many points as there are, or more: exactly the full epoch of today's order
    full, capped = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert _epoch_rows(data, full, None) == _epoch_rows(data, capped, 5000)


def test_the_chunked_subsample_takes_the_first_ranges_of_the_plan() -> None:
    whole = chunk_plan(1000, 96, torch.Generator().manual_seed(2))
    plan = chunk_plan(1000, 96, torch.Generator().manual_seed(2), limit=250)
    # the first ranges of the epoch's plan, the last cut short: a streamed epoch reads just 250 points
    assert sum(b - a for a, b in plan) == 250 and plan[:-1] == whole[: len(plan) - 1]
    assert plan[-1][0] == whole[len(plan) - 1][0] and plan[-1][1] < whole[len(plan) - 1][1]
    perm = chunked_permutation(1000, 96, torch.Generator().manual_seed(2), limit=250)
    assert perm.numel() == 250 and len(set(perm.tolist())) == 250
    start = 0
    for a, b in plan:  # each range's points in a run of their own, in plan order
        assert sorted(perm[start : start + b - a].tolist()) == list(range(a, b))
        start += b - a


def test_training_counts_points_per_epoch() -> None:
    data = _synthetic()
    settings = TrainingSettings(max_epochs=4, batch_size=64, learning_rate=3e-3, patience=None, seed=3)
    every = train(SPEC, settings, data)
    assert every.points_trained == 4 * data.n_train_points
    cheap = train(SPEC, settings.model_copy(update={"points_per_epoch": 700}), data)
    assert cheap.status == "completed" and cheap.epochs == 4 and cheap.points_trained == 4 * 700
    assert cheap.loop_seconds < every.loop_seconds
    assert [h["train_loss"] for h in cheap.history] != [h["train_loss"] for h in every.history]
    again = train(SPEC, settings.model_copy(update={"points_per_epoch": 700}), data)
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in cheap.history]
    # at least every point: the training of today, loss for loss
    capped = train(SPEC, settings.model_copy(update={"points_per_epoch": 10**9}), data)
    assert [h["train_loss"] for h in capped.history] == [h["train_loss"] for h in every.history]
    assert [h["val_loss"] for h in capped.history] == [h["val_loss"] for h in every.history]


def test_early_stopping_counts_epochs_of_points_per_epoch() -> None:
    data = _synthetic(n=800)
    settings = TrainingSettings(max_epochs=50, batch_size=50, learning_rate=1e-9, patience=3, min_delta=1e-3,
                                points_per_epoch=100)
    result = train(SPEC, settings, data)
    assert result.epochs == 1 + 3 and result.points_trained == 4 * 100


# -- the fixed validation subsample ----------------------------------------------------------------
def test_validation_sample_rows_are_fixed_sorted_and_distinct() -> None:
    rows = validation_sample_rows(1000, 120)
    assert rows is not None and rows.numel() == 120 and len(set(rows.tolist())) == 120
    assert torch.equal(rows, rows.sort().values) and int(rows.max()) < 1000
    assert torch.equal(rows, validation_sample_rows(1000, 120))  # type: ignore[arg-type]
    expected = torch.randperm(1000, generator=torch.Generator().manual_seed(VALIDATION_SAMPLE_SEED))[:120]
    assert torch.equal(rows, expected.sort().values)
    assert validation_sample_rows(1000, 1000) is None and validation_sample_rows(1000, 5000) is None


def test_validation_points_measure_epochs_on_a_subsample_and_the_result_on_every_point() -> None:
    data = _synthetic()
    base = TrainingSettings(max_epochs=5, batch_size=64, learning_rate=3e-3, patience=None, seed=9)
    every = train(SPEC, base, data)
    result = train(SPEC, base.model_copy(update={"validation_points": 150}), data)
    # the same training (its own RNG is untouched); only what validation sees differs
    assert [h["train_loss"] for h in result.history] == [h["train_loss"] for h in every.history]
    assert [h["val_loss"] for h in result.history] != [h["val_loss"] for h in every.history]
    rows = validation_sample_rows(data.n_val_points, 150)
    assert rows is not None
    sample = data.validation_sample(150)
    assert sample is not None and data.validation_sample(150) is sample  # drawn once, the same every epoch
    assert torch.equal(sample[0], data.x_val[rows]) and torch.equal(sample[1], data.y_val[rows])
    assert result.best_epoch_val_loss == validation_loss(result.model, result.scalers, *sample)
    assert result.best_epoch_val_loss == min(h["val_loss"] for h in result.history)
    # the final number is a full evaluation of the kept weights, not the subsample's
    assert result.best_val_loss == validation_loss(result.model, result.scalers, data.x_val, data.y_val)
    assert result.best_val_loss != result.best_epoch_val_loss and result.final_validation_seconds > 0
    # as many validation points as there are: today's validation
    whole = train(SPEC, base.model_copy(update={"validation_points": data.n_val_points}), data)
    assert [h["val_loss"] for h in whole.history] == [h["val_loss"] for h in every.history]
    assert whole.best_val_loss == every.best_val_loss == every.best_epoch_val_loss


def test_invalid_numbers_of_points_are_refused_naming_the_value() -> None:
    for bad in (0, -3, 2.5, True, "lots"):
        for name in ("points_per_epoch", "validation_points"):
            with pytest.raises(pydantic.ValidationError, match=name) as info:
                TrainingSettings(**{name: bad})
            assert repr(bad) in str(info.value) or str(bad) in str(info.value)
    assert TrainingSettings().points_per_epoch is None and TrainingSettings().validation_points is None


# -- the experiment file -----------------------------------------------------------------------
EXPERIMENT = """
name: levers
dataset: {store: small}
search_space: {width: [8, 16]}
strategy: {name: grid}
fixed: {max_epochs: 3, points_per_epoch: 500, validation_points: 300}
"""


def test_levers_round_trip_through_yaml_and_reach_the_training_settings(tmp_path: Path) -> None:
    path = tmp_path / "levers.yaml"
    path.write_text(EXPERIMENT)
    config = load_experiment(path)
    validate_experiment(config)
    settings = training_settings(config.hyperparameter_defaults(), config.training, seed=2)
    assert (settings.points_per_epoch, settings.validation_points, settings.max_epochs) == (500, 300, 3)
    # saved with the study (experiment.json, read back by resume) and dumped back to YAML
    assert type(config).model_validate_json(config.model_dump_json()) == config
    assert parse_experiment(yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json")))) == config
    # a trial config's own value overrides the fixed one; unset anywhere: every point
    trial = training_settings(trial_parameters({"width": 8, "points_per_epoch": 64}, config.hyperparameter_defaults()),
                              config.training, seed=2)
    assert (trial.points_per_epoch, trial.validation_points) == (64, 300)
    plain = parse_experiment({"name": "plain", "search_space": {"width": [8]}})
    default = training_settings(plain.hyperparameter_defaults(), plain.training, seed=0)
    assert (default.points_per_epoch, default.validation_points) == (None, None)
    assert "points_per_epoch" not in plain.hyperparameter_defaults()
    params = study_params(config, "/x.h5", "hash")
    assert (params["points_per_epoch"], params["validation_points"]) == (500, 300)
    assert study_params(plain, "/x.h5", "hash")["points_per_epoch"] == "all"


@pytest.mark.parametrize(("where", "bad"), [("fixed", 0), ("fixed", -10), ("fixed", 1.5), ("search_space", [100, 0])])
def test_invalid_levers_in_the_experiment_are_refused_before_anything_starts(where: str, bad: Any) -> None:
    raw = yaml.safe_load(EXPERIMENT)
    if where == "fixed":
        raw["fixed"]["validation_points"] = bad
    else:
        raw["search_space"]["points_per_epoch"] = bad
    with pytest.raises(ConfigError) as info:
        validate_experiment(parse_experiment(raw))
    text = str(info.value)
    assert ("validation_points" if where == "fixed" else "points_per_epoch") in text
    assert str(bad if where == "fixed" else 0) in text


# -- a trial ------------------------------------------------------------------------------------
def test_a_trial_validates_per_epoch_on_the_subsample_and_finally_on_every_point(
        monkeypatch: pytest.MonkeyPatch, small_store: Path) -> None:
    from hpsearch.data import open_store, split_snapshots

    with open_store(small_store) as store:
        split = split_snapshots(store.names, 2, 1, 1)
    data = TrainingData.from_store(small_store, split)
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(trainable, "_report", reports.append)
    monkeypatch.setattr(trainable, "match_threads_to_resources", lambda: 1)
    monkeypatch.setattr(trainable, "_device", lambda settings: "cpu")
    monkeypatch.setattr(trainable, "_training_data", lambda settings: data)
    config = parse_experiment({**yaml.safe_load(EXPERIMENT), "seed": 4,
                               "fixed": {"max_epochs": 10, "patience": None, "batch_size": 64,
                                         "points_per_epoch": 700, "validation_points": 200}})
    run_trial({"width": 16, "n_layers": 1}, TrialSettings.from_config(config, str(small_store), split))
    final = reports[-1]
    assert final["status"] == "completed" and final["epochs"] == 10 and len(reports) == 11
    for key in ("data_seconds", "loop_seconds", "validation_seconds", "evaluation_seconds", "report_seconds"):
        assert 0 <= final[key] <= final["trial_seconds"], key
    # the same training outside the trial: per-epoch losses on the 200 points, final ones on all
    params = {**config.hyperparameter_defaults(), "width": 16, "n_layers": 1}
    from hpsearch.config.experiment import network_spec

    result = train(network_spec(params, data.n_features, data.n_energies),
                   training_settings(params, config.training, seed=4), data)
    assert [r["val_loss"] for r in reports[:-1]] == [h["val_loss"] for h in result.history]
    sample = data.validation_sample(200)
    assert sample is not None
    assert min(r["val_loss"] for r in reports[:-1]) == validation_loss(result.model, result.scalers, *sample)
    assert final[LDOS_METRIC] == validation_loss(result.model, result.scalers, data.x_val, data.y_val)
    full = evaluate(result.model, result.scalers, data.validation_snapshots)
    assert sum(s.n_points for s in data.validation_snapshots) == data.n_val_points
    assert final[METRIC] == pytest.approx(full.mean_band_energy_error_mev_per_atom, rel=1e-12)
    assert math.isfinite(final[METRIC])
