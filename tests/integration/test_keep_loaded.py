"""``dataset.keep_loaded``: the data actors outlive a study, the next study on the same data uses
them, a changed store gets new ones, and ``hpsearch data release`` (release_shards) frees them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hpsearch.api import Experiment

pytestmark = [pytest.mark.ray]


def _actors() -> dict[str, str]:
    """hpsearch's data actors on the running Ray: name -> actor id."""
    import ray
    from ray.util import list_named_actors

    from hpsearch.tune.shards import NAMESPACE

    return {e["name"]: ray.get_actor(e["name"], namespace=NAMESPACE)._actor_id.hex()
            for e in list_named_actors(all_namespaces=True) if e["namespace"] == NAMESPACE}


def _study(store: Path, folder: Path, name: str, keep: bool) -> Experiment:
    return Experiment.from_dict({
        "name": name,
        "dataset": {"store": str(store), "split": {"train": 2, "validation": 1, "test": 1}, "keep_loaded": keep},
        "search_space": {"width": [8, 16]}, "strategy": {"name": "grid"},
        "fixed": {"max_epochs": 2, "patience": 2, "batch_size": 64},
        "budget": {"max_trials": 2, "max_concurrent": 1}, "retrains": 1, "seed": 1,
        "tracking": {"enabled": False}, "storage_path": str(folder / name),
    })


def test_data_actors_stay_for_the_next_study_until_released(ray_local: Any, small_store: Path,
                                                            tmp_path: Path) -> None:
    from hpsearch.tune.shards import release_shards

    release_shards()
    _study(small_store, tmp_path, "plain", keep=False).run()
    assert _actors() == {}  # the default: released with the study

    first = _study(small_store, tmp_path, "first", keep=True).run()
    kept = _actors()
    assert len(kept) == 1
    second = _study(small_store, tmp_path, "second", keep=True).run()
    assert _actors() == kept  # the same actor served the second study
    assert second.best_config == first.best_config

    changed = tmp_path / "copy.h5"  # another file (other path and time): its own actor
    shutil.copy(small_store, changed)
    _study(changed, tmp_path, "other", keep=True).run()
    assert len(_actors()) == 2 and set(kept) < set(_actors())

    from typer.testing import CliRunner

    from hpsearch.cli import app

    done = CliRunner().invoke(app, ["data", "release"])  # joins the running Ray
    assert done.exit_code == 0 and "released 2 data actors" in done.output, done.output
    assert _actors() == {}
