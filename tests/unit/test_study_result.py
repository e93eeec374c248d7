"""StudyResult keeps the retrains' test LDOS RMSE, the split's baselines and the skill through
result.json; the retrains' outcomes become a FinalEvaluation with LDOS RMSE and signed errors."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest

from hpsearch.data import Split, open_store
from hpsearch.model.baselines import BaselineReport, store_baselines
from hpsearch.tune.final import _final_evaluation, check_skill
from hpsearch.tune.results import StudyResult


@pytest.fixture(scope="module")
def report(small_store: Path) -> BaselineReport:
    with open_store(small_store) as opened:
        names = opened.names
    return store_baselines(small_store, Split(tuple(names[:2]), (names[2],), (names[3],)))


def _outcome(status: str, val: float, test: float, rmse: float) -> dict:
    return {"status": status, "val_error": val, "test_error": test, "val_ldos_rmse": rmse * 0.9,
            "test_ldos_rmse": rmse, "val_signed": [val], "test_signed": [-test], "state": None, "seconds": 1.0}


def test_final_evaluation_keeps_ldos_rmse_and_signed_errors() -> None:
    outcomes = [_outcome("completed", 3.0, 5.0, 2e-4), _outcome("diverged", math.nan, 9.0, 1.0),
                _outcome("completed", 2.0, 7.0, 4e-4)]
    final = _final_evaluation([10, 11, 12], outcomes, ["t0"])
    assert final.chosen == 2  # best validation error
    assert final.test_errors[:1] == [5.0] and math.isnan(final.test_errors[1])
    assert final.test_ldos_rmses[0] == 2e-4 and math.isnan(final.test_ldos_rmses[1])  # a failed retrain counts not
    assert final.test_ldos_rmse == pytest.approx(3e-4) and final.test_ldos_rmse_std == pytest.approx(2**0.5 * 1e-4)
    assert final.test_signed_errors_mev_per_atom == [[-5.0], [], [-7.0]]
    assert final.val_signed_errors_mev_per_atom == [[3.0], [], [2.0]]
    saved = final.to_dict()
    assert saved["test_ldos_rmse"] == pytest.approx(3e-4) and saved["test_ldos_rmses"][2] == 4e-4


def test_study_result_round_trip(report: BaselineReport, tmp_path: Path) -> None:
    outcomes = [_outcome("completed", 3.0, 5.0, 2e-4), _outcome("completed", 2.0, 7.0, 4e-4)]
    result = StudyResult(name="s", best_config={"width": 8}, best_val_error_mev_per_atom=2.5,
                         trials=pd.DataFrame({"status": ["completed"]}), core_seconds=1.0, gpu_seconds=0.0,
                         wall_seconds=2.0, results_dir=tmp_path / "study", objective_metric="val_ldos_mse")
    result.set_final(_final_evaluation([1, 2], outcomes, ["t0"]))
    result.baselines = report
    assert result.test_ldos_rmses == [2e-4, 4e-4] and result.test_ldos_rmse == pytest.approx(3e-4)
    assert result.ridge_test_ldos_rmse == pytest.approx(report.ldos_rmse("ridge", "test"))
    assert result.skill == pytest.approx(report.ldos_rmse("ridge", "test") / 3e-4)
    folder = result.save()
    saved = json.loads((folder / "result.json").read_text())
    for key in ("test_ldos_rmse", "test_ldos_rmse_std", "test_ldos_rmses", "ridge_test_ldos_rmse",
                "constant_test_ldos_rmse", "skill", "baselines"):
        assert saved[key] is not None, key
    loaded = StudyResult.load(folder)
    assert loaded.test_ldos_rmse == pytest.approx(result.test_ldos_rmse)
    assert loaded.test_ldos_rmse_std == pytest.approx(result.test_ldos_rmse_std)
    assert loaded.test_ldos_rmses == result.test_ldos_rmses
    assert loaded.baselines is not None and loaded.baselines.metrics() == pytest.approx(report.metrics())
    assert loaded.skill == pytest.approx(result.skill) and loaded.objective_metric == "val_ldos_mse"
    text = loaded.summary()
    assert "test LDOS RMSE 0.0003" in text and "ridge" in text and "skill (ridge / winner)" in text


def test_old_result_files_load_without_the_new_fields(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text(json.dumps({
        "name": "old", "best_config": None, "best_val_error_mev_per_atom": None, "search_core_s": 0.0,
        "search_gpu_s": 0.0, "wall_seconds": 1.0}))
    loaded = StudyResult.load(tmp_path)
    assert loaded.baselines is None and loaded.skill is None and loaded.test_ldos_rmse is None
    assert "skill" not in loaded.summary()


def test_a_winner_that_does_not_beat_ridge_is_a_warning(report: BaselineReport, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    result = StudyResult(name="flat", best_config=None, best_val_error_mev_per_atom=None, trials=pd.DataFrame(),
                         core_seconds=0.0, gpu_seconds=0.0, wall_seconds=0.0, results_dir=tmp_path)
    result.baselines = report
    with caplog.at_level(logging.INFO, logger="hpsearch.tune.final"):
        check_skill(result)  # no retrains: no skill, nothing said
        assert not caplog.records
        result.test_ldos_rmse = report.ldos_rmse("ridge", "test") * 1.5
        check_skill(result)
    assert caplog.records[-1].levelno == logging.WARNING and "does not beat ridge" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hpsearch.tune.final"):
        result.test_ldos_rmse = report.ldos_rmse("ridge", "test") / 4
        check_skill(result)
    assert caplog.records[-1].levelno == logging.INFO and "skill of the winner over ridge" in caplog.text
    assert result.skill == pytest.approx(4.0)
