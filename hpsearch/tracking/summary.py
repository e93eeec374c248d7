"""Names of the study-level params and metrics that the comparison reads back from MLflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: metrics of a study's parent run
BEST_ERROR = "best_band_energy_error_mev_per_atom"
RETRAIN_MEAN = "retrain_mean_mev_per_atom"
RETRAIN_STD = "retrain_std_mev_per_atom"
TRIALS_COMPLETED = "trials_completed"
TRIALS_PRUNED = "trials_pruned"
TRIALS_FAILED = "trials_failed"
CORE_SECONDS = "core_seconds"
GPU_SECONDS = "gpu_seconds"
WALL_SECONDS = "wall_seconds"
BEST_N_PARAMETERS = "best_n_parameters"

SUMMARY_METRICS = (
    BEST_ERROR,
    RETRAIN_MEAN,
    RETRAIN_STD,
    TRIALS_COMPLETED,
    TRIALS_PRUNED,
    TRIALS_FAILED,
    CORE_SECONDS,
    GPU_SECONDS,
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
