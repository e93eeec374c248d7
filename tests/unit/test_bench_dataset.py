"""The benchmark on any store: --store with a given or default split, the overrides every
experiment gets, and errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.api import Experiment
from hpsearch.bench.dataset import benchmark_data
from hpsearch.data import open_store
from hpsearch.data.splits import default_split_counts
from hpsearch.errors import ConfigError, HpsearchError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config(small_store: Path):
    raw = Experiment.from_yaml(REPO / "experiments" / "quick" / "tpe.yaml").config.model_dump(mode="json")
    raw["dataset"] = {**raw["dataset"], "store": str(small_store), "split": {"train": 1, "validation": 1, "test": 1}}
    return Experiment.from_dict(raw).config


def test_a_store_without_split_gets_the_default_division(small_store: Path, config) -> None:
    with open_store(small_store) as store:
        names = list(store.names)
    data = benchmark_data(small_store, None, config)
    counts = default_split_counts(len(names))
    assert (len(data.split.train), len(data.split.validation), len(data.split.test)) == counts
    assert list(data.split.train) + list(data.split.validation) + list(data.split.test) == names  # store order
    assert data.replaces_experiments and "default division" in data.chosen
    dataset = data.overrides()["dataset"]
    assert dataset["store"] == str(small_store.resolve()) and dataset["split"]["test"] == list(data.split.test)
    assert f"{counts[2]} test (" in data.describe() and str(small_store.resolve()) in data.describe()


def test_a_given_split_and_the_experiments_own(small_store: Path, config) -> None:
    data = benchmark_data(small_store, "2:1:1", config)
    assert [len(p) for p in (data.split.train, data.split.validation, data.split.test)] == [2, 1, 1]
    assert data.chosen == "--split 2:1:1"
    own = benchmark_data(None, None, config)  # the experiment files' store and split, untouched
    assert not own.replaces_experiments and own.overrides() == {}
    assert [len(p) for p in (own.split.train, own.split.validation, own.split.test)] == [1, 1, 1]
    only_split = benchmark_data(None, "1:1:2", config)  # --split alone: the experiments' store
    assert only_split.replaces_experiments and only_split.store == str(small_store.resolve())


def test_errors_name_the_store_and_the_split(small_store: Path, config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--store"):
        benchmark_data(tmp_path / "missing.h5", None, config)
    with pytest.raises(HpsearchError):
        benchmark_data(small_store, "2:1", config)
