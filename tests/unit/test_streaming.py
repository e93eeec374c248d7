"""Streamed training data: chunk order, store row reads, and streamed == in-memory training."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hpsearch.data import open_store, split_snapshots
from hpsearch.data.enlarge import enlarge_store
from hpsearch.errors import ConfigError
from hpsearch.model import NetworkSpec, TrainingData, TrainingSettings, evaluate, train, validation_loss
from hpsearch.model.scaling import MOMENT_BLOCK_ROWS, feature_moments
from hpsearch.model.sources import PointSource, batches_from_chunks, chunk_plan, chunked_permutation
from hpsearch.model.streaming import StreamedData


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_chunk_plan_visits_every_point_once_in_shuffled_chunks() -> None:
    gen = torch.Generator().manual_seed(3)
    plan = chunk_plan(10, 4, gen)
    assert sorted(plan) == [(0, 4), (4, 8), (8, 10)]
    perm = chunked_permutation(1000, 64, torch.Generator().manual_seed(5))
    assert sorted(perm.tolist()) == list(range(1000))
    assert not torch.equal(perm, torch.arange(1000))
    # each run of 64 (or the short last chunk) stays inside one chunk of the plan
    blocks = {int(i) // 64 for i in perm[:64]}
    assert len(blocks) == 1


def test_batches_from_chunks_equal_the_in_memory_chunked_batches() -> None:
    x = torch.arange(1003, dtype=torch.float32)[:, None].repeat(1, 3)
    y = -x[:, :2]
    perm = chunked_permutation(1003, 100, torch.Generator().manual_seed(9))
    expected = [perm[i : i + 64] for i in range(0, 1003, 64)]
    gen = torch.Generator().manual_seed(9)
    plan = chunk_plan(1003, 100, gen)
    got = list(batches_from_chunks(((x[a:b], y[a:b]) for a, b in plan), 64, gen))
    assert len(got) == len(expected)
    for (xb, yb), idx in zip(got, expected):
        assert torch.equal(xb[:, 0], idx.float()) and torch.equal(yb, -xb[:, :2])


def test_read_rows_matches_the_whole_snapshot(small_store: Path) -> None:
    with open_store(small_store) as store:
        name = store.names[0]
        x, y = store.read_arrays(name)
        flat_x, flat_y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
        n = store.n_points(name)
        assert n == flat_x.shape[0]
        for start, stop in ((0, 1), (5, 200), (127, 129), (n - 3, n), (0, n)):
            rx, ry = store.read_rows(name, start, stop)
            np.testing.assert_array_equal(rx, flat_x[start:stop])
            np.testing.assert_array_equal(ry, flat_y[start:stop])


@pytest.fixture(scope="module")
def tall_store(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small store tiled 3x4x4 (48x its points: two training snapshots span two moment blocks)."""
    return enlarge_store(small_store, tmp_path_factory.mktemp("tall") / "tall.h5", tile=(3, 4, 4))


def test_enlarged_store_is_labelled_synthetic_and_keeps_the_band_energy(small_store: Path, tall_store: Path) -> None:
    with open_store(small_store) as small, open_store(tall_store) as tall:
        source, big = small.names[0], tall.names[0]
        assert tall.attrs["synthetic"] is True and tall.attrs["tile"] == [3, 4, 4]
        meta = tall.metadata(big)
        assert meta.provenance["synthetic"] is True and meta.provenance["source_snapshot"] == source
        assert meta.n_atoms == 48 * small.metadata(source).n_atoms
        assert tall.n_points(big) == 48 * small.n_points(source)
        assert meta.voxel_volume_angstrom3 == pytest.approx(small.metadata(source).voxel_volume_angstrom3)
    # the supercell has the band energy per atom of the original, and a network's LDOS error
    split = split_snapshots(_names(small_store), 1, 1, 1)
    data = TrainingData.from_store(small_store, split)
    result = train(NetworkSpec(n_in=data.n_features, n_out=data.n_energies, widths=(16,)),
                   TrainingSettings(max_epochs=2, batch_size=256, patience=None), data)
    tiled = StreamedData.from_store(tall_store, _tiled_split(split), chunk_points=5000)
    small_ev = evaluate(result.model, result.scalers, data.test)
    tall_ev = evaluate(result.model, result.scalers, tiled.test)
    factor = 48  # atoms and electrons per supercell over the original's
    assert tall_ev.reference_band_energies_ev[0] / factor == pytest.approx(small_ev.reference_band_energies_ev[0], rel=1e-6)
    assert tall_ev.ldos_rmse[0] == pytest.approx(small_ev.ldos_rmse[0], rel=1e-5)


def _names(path: Path) -> list[str]:
    with open_store(path) as store:
        return store.names


def _tiled_split(split: object) -> object:
    from hpsearch.data import Split

    def tag(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{n}-x3x4x4-c0" for n in names)

    return Split(train=tag(split.train), validation=tag(split.validation), test=tag(split.test))  # type: ignore[attr-defined]


def test_enlarge_rejects_bad_tiles(small_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tile"):
        enlarge_store(small_store, tmp_path / "x.h5", tile=(0, 1, 1))
    with pytest.raises(ConfigError, match="copies"):
        enlarge_store(small_store, tmp_path / "x.h5", copies=0)


def test_streamed_and_in_memory_give_the_same_losses_in_chunk_order(tall_store: Path) -> None:
    split = split_snapshots(_names(tall_store), 2, 1, 1)
    chunk = 3000  # not a divisor of the snapshot size: chunks span two snapshots
    memory = dataclasses.replace(TrainingData.from_store(tall_store, split), chunk_points=chunk)
    streamed = StreamedData.from_store(tall_store, split, chunk_points=chunk)
    assert isinstance(streamed, PointSource) and isinstance(memory, PointSource)
    assert memory.n_train_points == streamed.n_train_points > MOMENT_BLOCK_ROWS
    m_x, s_x = feature_moments(memory.x_train), streamed.train_moments[0]
    assert all(torch.equal(m_x[k], s_x[k]) for k in m_x)  # bit for bit: same blocks, same merges
    spec = NetworkSpec(n_in=memory.n_features, n_out=memory.n_energies, widths=(24, 24), activations="Tanh")
    settings = TrainingSettings(max_epochs=3, batch_size=128, learning_rate=3e-3, patience=None, seed=11)
    a, b = train(spec, settings, memory), train(spec, settings, streamed)
    assert a.status == b.status == "completed"
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for ha, hb in zip(a.history, b.history):
        assert hb["val_loss"] == pytest.approx(ha["val_loss"], rel=1e-12)
    # the chunked order is a different order from the default permutation: other losses
    c = train(spec, settings, dataclasses.replace(memory, chunk_points=None))
    assert [h["train_loss"] for h in c.history] != [h["train_loss"] for h in a.history]
    ea = evaluate(a.model, a.scalers, memory.test).band_energy_errors_mev_per_atom
    eb = evaluate(b.model, b.scalers, streamed.test).band_energy_errors_mev_per_atom
    assert eb == pytest.approx(ea, rel=1e-9) and all(math.isfinite(e) for e in ea)
    assert [s.name for s in streamed.validation_snapshots] == list(split.validation)
    val = evaluate(b.model, b.scalers, streamed.validation_snapshots)
    assert val.names == list(split.validation) and all(math.isfinite(e) for e in val.band_energy_errors_mev_per_atom)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_streamed_chunks_through_pinned_buffers_give_the_in_memory_losses_on_cuda(tall_store: Path) -> None:
    split = split_snapshots(_names(tall_store), 2, 1, 1)
    memory = dataclasses.replace(TrainingData.from_store(tall_store, split), chunk_points=4096).to("cuda")
    streamed = StreamedData.from_store(tall_store, split, chunk_points=4096, device="cuda")
    spec = NetworkSpec(n_in=memory.n_features, n_out=memory.n_energies, widths=(32,))
    settings = TrainingSettings(max_epochs=2, batch_size=256, patience=None, seed=4)
    a, b = train(spec, settings, memory, device="cuda"), train(spec, settings, streamed, device="cuda")
    assert [h["train_loss"] for h in b.history] == pytest.approx([h["train_loss"] for h in a.history], rel=1e-6)


def test_dataset_streaming_options_are_validated() -> None:
    from hpsearch.config.experiment import parse_experiment

    base = {"name": "s", "search_space": {"width": [8]}}
    config = parse_experiment({**base, "dataset": {"memory_budget_gb": 2.5, "chunk_points": 80000}})
    assert config.dataset.memory_budget_gb == 2.5 and config.dataset.chunk_points == 80000
    assert parse_experiment(base).dataset.memory_budget_gb is None  # automatic
    for bad, key in (({"memory_budget_gb": -1}, "memory_budget_gb"), ({"chunk_points": 10}, "chunk_points"),
                     ({"prefetch_chunks": 99}, "prefetch_chunks")):
        with pytest.raises(ConfigError, match=key):
            parse_experiment({**base, "dataset": bad})


class _CountingReader:
    """A ChunkReader that counts the rows it reads, per part of the split."""

    def __init__(self, reader: object, train_names: tuple[str, ...]) -> None:
        self.reader, self.train_names = reader, train_names
        self.rows = {"train": 0, "validation": 0}

    def request(self, names: tuple[str, ...], start: int, stop: int) -> object:
        self.rows["train" if tuple(names) == self.train_names else "validation"] += stop - start
        return self.reader.request(names, start, stop)  # type: ignore[attr-defined]

    def result(self, handle: object) -> object:
        return self.reader.result(handle)  # type: ignore[attr-defined]


def test_streamed_training_honours_points_per_epoch_and_validation_points(tall_store: Path) -> None:
    split = split_snapshots(_names(tall_store), 2, 1, 1)
    chunk = 3000
    memory = dataclasses.replace(TrainingData.from_store(tall_store, split), chunk_points=chunk)
    opened = StreamedData.from_store(tall_store, split, chunk_points=chunk)
    counter = _CountingReader(opened.reader, opened.train_names)
    streamed = dataclasses.replace(opened, reader=counter)
    spec = NetworkSpec(n_in=memory.n_features, n_out=memory.n_energies, widths=(24,), activations="Tanh")
    settings = TrainingSettings(max_epochs=3, batch_size=128, learning_rate=3e-3, patience=None, seed=11,
                                points_per_epoch=7500, validation_points=2000)
    a, b = train(spec, settings, memory), train(spec, settings, streamed)
    assert a.status == b.status == "completed" and a.points_trained == b.points_trained == 3 * 7500
    # the streamed subsample is the in-memory chunked one: the same losses, epoch by epoch
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for ha, hb in zip(a.history, b.history):
        assert hb["val_loss"] == pytest.approx(ha["val_loss"], rel=1e-12)
    # the same fixed validation points on both paths; the final loss on every point
    sample_a, sample_b = memory.validation_sample(2000), streamed.validation_sample(2000)
    assert sample_a is not None and sample_b is not None
    assert torch.equal(sample_a[0], sample_b[0]) and torch.equal(sample_a[1], sample_b[1])
    full = validation_loss(b.model, b.scalers, memory.x_val, memory.y_val)
    assert b.best_val_loss == pytest.approx(full, rel=1e-12) and b.best_val_loss != b.best_epoch_val_loss
    # reads: the epochs' points only; validation once for the subsample, once for the final loss
    assert counter.rows["train"] == 3 * 7500
    assert counter.rows["validation"] == 2 * streamed.n_val_points
