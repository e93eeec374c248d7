"""Each study registers its trainable under its own name (studies run at once from one driver must
not start each other's trials); a study started under the old shared name still resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpsearch.api import Experiment
from hpsearch.tune.runner import LEGACY_TRAINABLE_NAME, _restored_tuner, trainable_name


def _config(name: str) -> Any:
    return Experiment.from_dict({"name": name, "search_space": {"width": [8, 16]}, "strategy": {"name": "grid"},
                                 "resources": {"cpus": 0.5}}).config


def test_names_differ_per_study_and_stay_the_same_for_one() -> None:
    a, b = trainable_name(_config("paper-tpe-r0")), trainable_name(_config("paper-tpe-r1"))
    assert a != b and a == trainable_name(_config("paper-tpe-r0"))
    assert a.startswith(f"{LEGACY_TRAINABLE_NAME}_")  # trial folders still read run_trial_*


def _started_study(folder: Path, name: str) -> Path:
    from ray import tune

    def trainable(config: dict[str, Any]) -> None:
        tune.report({"x": 1.0})

    trainable.__name__ = name
    tune.Tuner(trainable, run_config=tune.RunConfig(name="tune", storage_path=str(folder), verbose=0)).fit()
    return folder / "tune"


@pytest.mark.ray
@pytest.mark.parametrize("legacy", [False, True])
def test_restore_finds_the_name_the_study_started_with(ray_local: Any, tmp_path: Path, legacy: bool) -> None:
    config = _config("resumable")
    started_as = LEGACY_TRAINABLE_NAME if legacy else trainable_name(config)
    tune_dir = _started_study(tmp_path, started_as)
    tuner = _restored_tuner(tune_dir, None, config)  # type: ignore[arg-type]  # settings are not needed to restore
    assert tuner is not None
    with pytest.raises(ValueError, match="expected"):
        _restored_tuner(_started_study(tmp_path / "other", "some_other_name"), None, config)  # type: ignore[arg-type]
