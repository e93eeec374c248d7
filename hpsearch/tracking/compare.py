"""The paper's comparison table, read back from MLflow (``mlflow.search_runs``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hpsearch.errors import HpsearchError
from hpsearch.tracking import summary as s

COLUMNS = [
    "strategy",
    "study",
    "test_error_mev_per_atom",
    "test_error_std_mev_per_atom",
    "best_val_error_mev_per_atom",
    "search_core_s",
    "search_gpu_s",
    "retrain_core_s",
    "wall_seconds",
    "speedup_vs_tpe",
    "trials_completed",
    "trials_pruned",
    "trials_failed",
    "n_parameters",
]


def study_runs(experiment_name: str, tracking_uri: str) -> pd.DataFrame:
    """One row per study (parent run) of an experiment."""
    import mlflow

    from hpsearch.tracking.tracker import using_tracking_uri

    with using_tracking_uri(tracking_uri):
        if mlflow.get_experiment_by_name(experiment_name) is None:
            raise HpsearchError(
                f"no MLflow experiment named {experiment_name!r} at {tracking_uri}: run a study first "
                "or point MLFLOW_TRACKING_URI at the server that holds it"
            )
        runs = mlflow.search_runs(
            experiment_names=[experiment_name],
            filter_string="tags.`hpsearch.role` = 'study'",
            output_format="pandas",
        )
    assert isinstance(runs, pd.DataFrame)
    return runs


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs.columns else pd.Series([float("nan")] * len(runs), index=runs.index)


def comparison_table(runs: pd.DataFrame, reference: str = "tpe") -> pd.DataFrame:
    """Strategy, the winner's retrained test error (mean/std over retrain seeds), the best trial's
    validation error, search and retrain compute, wall time, speed-up of the search vs `reference`."""
    strategy = _column(runs, "params.strategy").astype(str)
    scheduler = _column(runs, "params.scheduler")
    with_scheduler = scheduler.notna() & ~scheduler.astype(str).isin(["none", "None", "nan", ""])
    strategy = strategy.where(~with_scheduler, strategy + " + " + scheduler.astype(str))
    table = pd.DataFrame(
        {
            "strategy": strategy,
            "study": _column(runs, "tags.mlflow.runName"),
            "test_error_mev_per_atom": _column(runs, f"metrics.{s.RETRAIN_MEAN}"),
            "test_error_std_mev_per_atom": _column(runs, f"metrics.{s.RETRAIN_STD}"),
            "best_val_error_mev_per_atom": _column(runs, f"metrics.{s.BEST_ERROR}"),
            "search_core_s": _column(runs, f"metrics.{s.CORE_SECONDS}"),
            "search_gpu_s": _column(runs, f"metrics.{s.GPU_SECONDS}"),
            "retrain_core_s": _column(runs, f"metrics.{s.RETRAIN_CORE_SECONDS}"),
            "wall_seconds": _column(runs, f"metrics.{s.WALL_SECONDS}"),
            "trials_completed": _column(runs, f"metrics.{s.TRIALS_COMPLETED}"),
            "trials_pruned": _column(runs, f"metrics.{s.TRIALS_PRUNED}"),
            "trials_failed": _column(runs, f"metrics.{s.TRIALS_FAILED}"),
            "n_parameters": _column(runs, f"metrics.{s.BEST_N_PARAMETERS}"),
        }
    )
    reference_rows = table[table["strategy"] == reference]
    if len(reference_rows):
        reference_cost = float(reference_rows["search_core_s"].iloc[0])
        table["speedup_vs_tpe"] = reference_cost / table["search_core_s"]
    else:
        table["speedup_vs_tpe"] = float("nan")
    return table[COLUMNS].sort_values("search_core_s", ascending=False).reset_index(drop=True)


def format_table(table: pd.DataFrame) -> list[list[Any]]:
    """Rows of strings for printing (rich or Markdown)."""
    rows = []
    for _, row in table.iterrows():
        rows.append(
            [
                row["strategy"],
                f"{row['test_error_mev_per_atom']:.2f} ± {row['test_error_std_mev_per_atom']:.2f}",
                f"{row['best_val_error_mev_per_atom']:.2f}",
                f"{row['search_core_s']:.0f}",
                f"{row['wall_seconds']:.0f}",
                f"{row['speedup_vs_tpe']:.1f}x",
                f"{row['n_parameters']:.0f}",
            ]
        )
    return rows


def markdown_table(table: pd.DataFrame) -> str:
    header = ("| strategy | test error (meV/atom), winner retrained | best validation error | search compute (core-s) "
              "| wall (s) | speed-up vs tpe | network parameters |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in format_table(table)]
    return "\n".join(lines)
