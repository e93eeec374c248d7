"""Training: learning, early stopping, divergence, schedules, callbacks, save/load, 5-seed retrain."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydantic
import pytest
import torch

from hpsearch.errors import ConfigError
from hpsearch.model import (
    NetworkSpec,
    TrainingData,
    TrainingSettings,
    load_model,
    resolve_device,
    retrain,
    train,
    validation_loss,
)
from hpsearch.model.training import _Stopper
from hpsearch.physics import EnergyGrid


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the machine is shared; results do not depend on it


def _synthetic(n: int = 4000, seed: int = 0) -> TrainingData:
    """A smooth map from 8 features to 5 outputs; 3/4 training, 1/4 validation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g) * torch.tensor([1.0, 2.0, 5.0, 0.5, 1.0, 1.0, 3.0, 1.0]) + 4.0
    w = torch.randn(8, 5, generator=g) * 0.3
    y = torch.sigmoid((x - 4.0) @ w) + 0.1
    cut = 3 * n // 4
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:])


SPEC = NetworkSpec(n_in=8, n_out=5, widths=(32, 32), activations="Tanh")


def test_training_learns_and_is_reproducible() -> None:
    data = _synthetic()
    settings = TrainingSettings(max_epochs=12, batch_size=64, learning_rate=3e-3, patience=None, seed=7)
    state = torch.get_rng_state()
    a = train(SPEC, settings, data)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    assert a.status == "completed" and a.epochs == 12 and a.reason == "reached max_epochs=12"
    assert [h["epoch"] for h in a.history] == list(range(1, 13))
    assert a.history[-1]["val_loss"] < a.history[0]["val_loss"] / 5
    b = train(SPEC, settings, data)
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    c = train(SPEC, settings.model_copy(update={"seed": 8}), data)
    assert [h["val_loss"] for h in a.history] != [h["val_loss"] for h in c.history]
    assert a.first_batch_seconds < a.seconds and a.points_per_second > 0


def test_best_weights_are_restored() -> None:
    data = _synthetic()
    result = train(SPEC, TrainingSettings(max_epochs=6, batch_size=128, learning_rate=0.05, patience=None), data)
    vals = [h["val_loss"] for h in result.history]
    assert result.best_val_loss == min(vals) and result.best_epoch == 1 + int(np.argmin(vals))
    again = validation_loss(result.model, result.scalers, data.x_val, data.y_val)
    assert again == pytest.approx(result.best_val_loss, rel=1e-6)


def test_stopper_counts_patience_from_the_last_real_improvement() -> None:
    stopper = _Stopper(patience=3, min_delta=0.01)
    model = torch.nn.Linear(1, 1)
    # 0.995 is better (best weights) but not by 1 %: it does not reset the patience
    sequence = [1.0, 0.9, 0.895, 0.899, 0.5, 0.6, 0.499, 0.6]
    stops = [stopper.update(epoch, val, model) for epoch, val in enumerate(sequence, start=1)]
    assert stops == [False, False, False, False, False, False, False, True]
    assert (stopper.best, stopper.best_epoch) == (0.499, 7)
    no_patience = _Stopper(patience=None, min_delta=0.0)
    assert not any(no_patience.update(e, 1.0, model) for e in range(1, 50))


def test_early_stopping_ends_a_stagnating_training() -> None:
    data = _synthetic(n=800)
    settings = TrainingSettings(max_epochs=50, batch_size=200, learning_rate=1e-9, patience=3, min_delta=1e-3)
    result = train(SPEC, settings, data)
    assert result.status == "completed" and "early stopping" in (result.reason or "")
    assert result.epochs == 1 + 3  # first epoch sets the reference; then 3 without 0.1 % improvement


def test_divergence_is_a_recorded_failure_not_an_exception() -> None:
    data = _synthetic(n=800)
    seen: list[int] = []
    settings = TrainingSettings(optimizer="sgd", learning_rate=1e12, batch_size=50, max_epochs=20, patience=None)
    result = train(SPEC, settings, data, on_epoch=lambda e, t, v: seen.append(e))
    assert result.status == "diverged" and "non-finite loss at epoch" in (result.reason or "")
    assert not math.isfinite(result.history[-1]["train_loss"])
    assert result.epochs < 20 and seen == list(range(1, result.epochs))  # not told of the bad epoch


def test_on_epoch_sees_each_epoch_and_can_stop() -> None:
    data = _synthetic(n=800)
    calls: list[tuple[int, float, float]] = []

    def on_epoch(epoch: int, train_loss: float, val_loss: float) -> bool:
        calls.append((epoch, train_loss, val_loss))
        return epoch == 3

    result = train(SPEC, TrainingSettings(max_epochs=10, batch_size=100), data, on_epoch=on_epoch)
    assert result.epochs == 3 and result.reason == "stopped by on_epoch at epoch 3"
    assert calls == [(h["epoch"], h["train_loss"], h["val_loss"]) for h in result.history]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("exponential", [1e-2, 5e-3, 2.5e-3, 1.25e-3]), ("cosine", [1e-2 * (1 + math.cos(math.pi * e / 4)) / 2
                                                               for e in range(4)])],
)
def test_learning_rate_schedules(schedule: str, expected: list[float]) -> None:
    settings = TrainingSettings(optimizer="sgd", momentum=0.9, weight_decay=1e-4, learning_rate=1e-2,
                                max_epochs=4, batch_size=200, lr_schedule=schedule, lr_factor=0.5, patience=None)
    result = train(SPEC, settings, _synthetic(n=800))
    assert [h["learning_rate"] for h in result.history] == pytest.approx(expected)


def test_plateau_schedule_lowers_the_rate_when_validation_stalls() -> None:
    settings = TrainingSettings(learning_rate=1e-9, max_epochs=5, batch_size=200, lr_schedule="plateau",
                                lr_factor=0.1, lr_patience=1, patience=None)
    rates = [h["learning_rate"] for h in train(SPEC, settings, _synthetic(n=800)).history]
    # epoch 1 sets the best; after 2 epochs without improvement (> lr_patience=1) the rate drops
    assert rates == pytest.approx([1e-9, 1e-9, 1e-9, 1e-10, 1e-10])


def test_mismatched_spec_and_invalid_settings() -> None:
    with pytest.raises(ConfigError, match="8 descriptor features and 5 LDOS energies"):
        train(NetworkSpec(n_in=9, n_out=5, widths=(4,)), TrainingSettings(), _synthetic(n=100))
    with pytest.raises(pydantic.ValidationError, match="optimizer"):
        TrainingSettings(optimizer="rmsprop")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="batch_sz"):
        TrainingSettings(batch_sz=3)  # type: ignore[call-arg]


def test_save_and_load_model(tmp_path: Path) -> None:
    data = _synthetic(n=800)
    result = train(SPEC, TrainingSettings(max_epochs=2, batch_size=100), data)
    path = result.save_model(tmp_path / "m" / "model.pt")
    torch.load(path, weights_only=True)  # plain state: no pickled classes
    loaded = load_model(path)
    assert loaded.spec == SPEC and loaded.settings == result.settings
    x = data.x_val[:50]
    with torch.inference_mode():  # trained on the default device (CUDA when there), loaded on the CPU
        trained = result.model.to("cpu")
        expected = result.scalers.inverse_ldos(trained(result.scalers.transform_descriptors(x)))
        got = loaded.scalers.inverse_ldos(loaded.model(loaded.scalers.transform_descriptors(x)))
    torch.testing.assert_close(got, expected)
    assert resolve_device().type in ("cpu", "cuda")


@pytest.fixture(scope="module")
def be2_data(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainingData:
    from hpsearch.data.mala import import_mala
    from hpsearch.data.splits import split_snapshots
    from hpsearch.data.store import open_store

    path = import_mala(be2_dir, tmp_path_factory.mktemp("be2") / "be2.h5", EnergyGrid(-5.0, 2.5, 11))
    with open_store(path) as store:
        split = split_snapshots(store.names, 2, 1, 1)
    return TrainingData.from_store(path, split)


def test_retrain_five_seeds_on_real_data(be2_data: TrainingData) -> None:
    spec = NetworkSpec(n_in=be2_data.n_features, n_out=be2_data.n_energies, widths=(32,), activations="LeakyReLU")
    settings = TrainingSettings(max_epochs=3, batch_size=512, learning_rate=1e-3, seed=10)
    result = retrain(spec, settings, be2_data)
    assert result.seeds == [10, 11, 12, 13, 14] and result.statuses == ["completed"] * 5
    assert len(set(result.values)) == 5 and all(v > 0 and math.isfinite(v) for v in result.values)
    assert result.mean == pytest.approx(float(np.mean(result.values)))
    assert result.std == pytest.approx(float(np.std(result.values, ddof=1))) and result.std > 0
    assert result.n_failed == 0 and all(e is not None and e.names == ["Be_snapshot3"] for e in result.evaluations)
    with pytest.raises(ValueError, match="distinct seeds"):
        retrain(spec, settings, be2_data, seeds=[1, 1])


def test_retrain_counts_diverged_runs(be2_data: TrainingData) -> None:
    spec = NetworkSpec(n_in=be2_data.n_features, n_out=be2_data.n_energies, widths=(8,))
    settings = TrainingSettings(optimizer="sgd", learning_rate=1e12, max_epochs=3, batch_size=2048)
    result = retrain(spec, settings, be2_data, n_seeds=2)
    assert result.statuses == ["diverged", "diverged"] and result.n_failed == 2
    assert all(math.isnan(v) for v in result.values) and math.isnan(result.mean)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_on_cuda_evaluates_like_the_cpu(be2_data: TrainingData) -> None:
    from hpsearch.model.evaluation import evaluate

    spec = NetworkSpec(n_in=be2_data.n_features, n_out=be2_data.n_energies, widths=(64, 64), activations="LeakyReLU")
    settings = TrainingSettings(max_epochs=4, batch_size=256, learning_rate=1e-3, seed=3)
    result = train(spec, settings, be2_data, device="cuda")
    assert result.status == "completed" and next(result.model.parameters()).device.type == "cuda"
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    on_gpu = evaluate(result.model, result.scalers, be2_data.to("cuda").test)
    cpu_model = result.model.to("cpu")
    on_cpu = evaluate(cpu_model, be2_data.scalers(settings.descriptor_scaling, settings.ldos_scaling), be2_data.test)
    assert math.isfinite(on_gpu.mean_band_energy_error_mev_per_atom)
    assert on_gpu.band_energies_ev == pytest.approx(on_cpu.band_energies_ev, rel=1e-5)
