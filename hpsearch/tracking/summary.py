"""Names of the study-level params and metrics that the comparison reads back from MLflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: metrics of a study's parent run. The search selects on validation: ``BEST_ERROR`` is the best
#: trial's validation error. Only the winner's retrains see the test snapshots: ``RETRAIN_MEAN``
#: and ``RETRAIN_STD`` are their test errors (mean, sample std over the retrain seeds).
BEST_ERROR = "best_val_error_mev_per_atom"
RETRAIN_MEAN = "test_error_mev_per_atom"
RETRAIN_STD = "test_error_std_mev_per_atom"
#: validation error of the retrain whose model is saved (the one with the best validation error)
RETRAIN_VAL = "saved_model_val_error_mev_per_atom"
#: the retrains' test LDOS RMSE (mean, sample std over seeds; the store's LDOS units): the low-noise metric
TEST_LDOS_RMSE = "test_ldos_rmse"
TEST_LDOS_RMSE_STD = "test_ldos_rmse_std"
#: the baselines of the study's split (test LDOS RMSE) and the winner's skill = ridge / winner
RIDGE_TEST_LDOS_RMSE = "ridge_test_ldos_rmse"
CONSTANT_TEST_LDOS_RMSE = "constant_test_ldos_rmse"
SKILL = "skill"
TRIALS_COMPLETED = "trials_completed"
TRIALS_PRUNED = "trials_pruned"
TRIALS_FAILED = "trials_failed"
#: compute of the search (trials) and of the retrains, counted apart
CORE_SECONDS = "search_core_s"
GPU_SECONDS = "search_gpu_s"
RETRAIN_CORE_SECONDS = "retrain_core_s"
RETRAIN_GPU_SECONDS = "retrain_gpu_s"
WALL_SECONDS = "wall_seconds"
BEST_N_PARAMETERS = "best_n_parameters"

SUMMARY_METRICS = (
    BEST_ERROR,
    RETRAIN_MEAN,
    RETRAIN_STD,
    RETRAIN_VAL,
    TEST_LDOS_RMSE,
    TEST_LDOS_RMSE_STD,
    RIDGE_TEST_LDOS_RMSE,
    CONSTANT_TEST_LDOS_RMSE,
    SKILL,
    TRIALS_COMPLETED,
    TRIALS_PRUNED,
    TRIALS_FAILED,
    CORE_SECONDS,
    GPU_SECONDS,
    RETRAIN_CORE_SECONDS,
    RETRAIN_GPU_SECONDS,
    WALL_SECONDS,
    BEST_N_PARAMETERS,
)


def git_commit(path: str | Path | None = None) -> str:
    """The git commit of the code (or 'unknown' outside a checkout)."""
    folder = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
