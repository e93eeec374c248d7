"""The study status line shows what the study selects on: the validation LDOS RMSE for the LDOS
objective, the band-energy error for `band_energy`; the final note the retrained winner's."""

from __future__ import annotations

from types import SimpleNamespace

from hpsearch.bench.progress import StudyProgress
from hpsearch.config.strategy import LDOS_METRIC, METRIC


def test_line_follows_the_ldos_objective() -> None:
    line = StudyProgress("study 1/2: tpe", enabled=False, objective="ldos_mse")
    line.trial_finished({METRIC: 12.0, LDOS_METRIC: 4e-4, "status": "completed"})
    line.trial_finished({METRIC: 3.0, LDOS_METRIC: 9e-4, "status": "completed"})  # lower meV, higher loss
    text = line._line()
    assert "2 trials done" in text and "val LDOS RMSE 0.02 (scaled)" in text and "meV" not in text


def test_line_in_band_energy_and_the_final_note() -> None:
    line = StudyProgress("study 1/2: tpe", enabled=False, objective="band_energy")
    line.trial_finished({METRIC: 12.0, LDOS_METRIC: 4e-4, "status": "completed"})
    line.trial_finished({METRIC: 3.0, LDOS_METRIC: 9e-4, "status": "completed"})
    assert line._line().endswith("best 3 meV/atom")
    ldos = StudyProgress("t", enabled=False, objective="ldos_mse")
    ldos.done(SimpleNamespace(final=SimpleNamespace(mean=5.0, std=1.0), test_ldos_rmse=2.5e-4,
                              test_ldos_rmse_std=1e-5, core_seconds=42.0))  # nothing drawn when disabled
    assert ldos.final_note == "; winner retrained: test LDOS RMSE 0.00025 ± 1e-05; 42 core-s"
    energy = StudyProgress("t", enabled=False, objective="band_energy")
    energy.done(SimpleNamespace(final=SimpleNamespace(mean=5.0, std=1.0), test_ldos_rmse=2.5e-4,
                                test_ldos_rmse_std=1e-5, core_seconds=42.0))
    assert energy.final_note == "; winner retrained 5 ± 1 meV/atom; 42 core-s"
