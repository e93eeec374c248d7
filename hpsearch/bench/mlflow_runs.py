"""The benchmark in MLflow: the "comparison" run (files, figures, verdict, baselines) and the
comparison written onto every study's run, so the runs table shows it.

Every study run carries the tag ``strategy`` (the table's label, e.g. "tpe + asha", "no search")
from its start (:func:`study_tags`); the saved view (:mod:`hpsearch.tracking.views`) shows it as a
column beside the study's test error, test LDOS RMSE and the ridge and constant baselines of its
split. The comparison run holds the verdict (tag ``hpsearch.verdict``, param ``verdict``) and the
baselines' test metrics; nothing here ever fails the benchmark (the files exist).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpsearch.bench.comparison import ref_key
from hpsearch.tracking.views import STRATEGY_TAG

if TYPE_CHECKING:
    from hpsearch.api import Experiment
    from hpsearch.bench.report import BenchmarkReport

__all__ = ["STRATEGY_TAG", "VERDICT_TAG", "annotate_studies", "log_comparison", "study_tags"]

logger = logging.getLogger(__name__)

#: "decidable" / "not decidable" (hpsearch.bench.verdict), on the comparison run and every study run
VERDICT_TAG = "hpsearch.verdict"
_FILES = ("comparison.md", "comparison.csv", "studies.csv", "summary.json", "figure6_architectures.txt")


def study_tags(label: str, repeat: int, benchmark: str) -> dict[str, str]:
    """Tags of one study's run: its strategy label, repeat and the benchmark (results folder) it belongs to."""
    return {STRATEGY_TAG: label, "hpsearch.repeat": str(repeat), "hpsearch.benchmark": benchmark}


def _comparison_metrics(report: BenchmarkReport) -> dict[str, float]:
    metrics: dict[str, float] = {}
    target = report.target
    if target is not None:
        metrics.update({"target_error_ratio": target.error_ratio, "target_error_ratio_ci_high": target.error_ratio_ci[1],
                        "target_compute_ratio": target.compute_ratio})
        if target.decidable:
            metrics.update({"target_passed": float(target.passed), "target_holds_with_ci": float(target.holds_with_ci)})
    verdict = report.verdict
    if verdict is not None:
        metrics.update({"verdict_decidable": float(verdict.decidable), "verdict_p_value": verdict.p_value,
                        "verdict_tpe_better_repeats": float(verdict.n_better),
                        "verdict_paired_repeats": float(verdict.n_pairs), "verdict_ldos_ratio": verdict.ratio})
    if report.kendall is not None:
        metrics["kendall_tau_naswot_error"] = float(report.kendall["tau_paper"])
    if report.baselines is not None:
        metrics.update({k: v for k, v in report.baselines.metrics().items() if "_test_" in k})
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def log_comparison(report: BenchmarkReport, uri: str, mlflow_experiment: str) -> None:
    """A "comparison" run holding the table, figures, summary, verdict and baselines."""
    from hpsearch.tracking.tracker import StudyTracker

    tracker = StudyTracker(uri, mlflow_experiment, "comparison", report.folder, study_uid=uuid.uuid4().hex[:12])
    tags = {"hpsearch.role": "comparison", STRATEGY_TAG: "comparison (baselines: ridge, constant)",
            "hpsearch.benchmark": str(report.folder)}
    params: dict[str, Any] = {}
    if report.verdict is not None:
        tags.update({VERDICT_TAG: report.verdict.state, "hpsearch.verdict_text": report.verdict.text[:4000]})
        params["verdict"] = report.verdict.state
    tracker.start(params=params, tags=tags)
    for name in _FILES:
        if (report.folder / name).is_file():
            tracker.log_artifact(report.folder / name)
    for path in report.figures.values():
        tracker.log_artifact(path, "figures")
    left = tracker.finish(_comparison_metrics(report))
    if left:
        logger.warning("%d MLflow operations of the comparison run are pending in %s", left, tracker.folder)


def _row_metrics(report: BenchmarkReport, row: Any, label: str, number: int) -> dict[str, float]:
    """The strategy's medians over repeats and this repeat's speed-up and p against each reference."""
    metrics = {"strategy_test_error_median_mev_per_atom": row["test_error_mev_per_atom"],
               "strategy_test_error_ci_low_mev_per_atom": row["test_error_mev_per_atom_ci_low"],
               "strategy_test_error_ci_high_mev_per_atom": row["test_error_mev_per_atom_ci_high"],
               "strategy_test_ldos_rmse_median": row["test_ldos_rmse"]}
    runs = report.runs
    mine = runs[(runs["strategy"] == label) & (runs["repeat"] == number)]
    for reference in report.references:
        key = ref_key(reference)
        theirs = runs[(runs["strategy"] == reference) & (runs["repeat"] == number)]
        if not mine.empty and not theirs.empty:
            metrics[f"speedup_vs_{key}"] = float(theirs["search_core_s"].iloc[0]) / float(mine["search_core_s"].iloc[0])
        metrics[f"strategy_p_vs_{key}"] = row.get(f"p_vs_{key}", math.nan)
        metrics[f"strategy_ldos_p_vs_{key}"] = row.get(f"ldos_p_vs_{key}", math.nan)
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def annotate_studies(report: BenchmarkReport, experiments: Mapping[str, Sequence[Experiment]], uri: str,
                     labels: Mapping[str, str]) -> None:
    """Put the comparison on every study's run: medians and CI over repeats, this repeat's speed-up
    and p against each reference, the strategy tag, the verdict, and one line in the description."""
    from mlflow.tracking import MlflowClient

    from hpsearch.tune.study_tracking import study_tracker

    if report.table.empty:
        return
    rows = report.table.set_index("strategy")
    try:
        client = MlflowClient(uri)
        for stem, repeats in experiments.items():
            label = labels[stem]
            if label not in rows.index:
                continue
            for number, experiment in enumerate(repeats):
                tracker = study_tracker(experiment.config, experiment.config.results_dir)
                run_id = tracker.run_id() if tracker is not None else None
                if run_id is None:
                    continue
                for name, value in _row_metrics(report, rows.loc[label], label, number).items():
                    client.log_metric(run_id, name, value)
                line = verdict_of(label, report)
                client.set_tag(run_id, STRATEGY_TAG, label)  # a study kept from an earlier run may lack it
                client.set_tag(run_id, "hpsearch.comparison", line)
                if report.verdict is not None:
                    client.set_tag(run_id, VERDICT_TAG, report.verdict.state)
                client.set_tag(run_id, "mlflow.note.content", f"{label}, repeat {number + 1} of {len(repeats)}. "
                               f"{line}. Selected on validation; test error of the winner retrained.")
    except Exception as exc:  # noqa: BLE001 - the comparison files exist: MLflow annotations are a convenience
        logger.warning("could not annotate the studies' MLflow runs with the comparison (%s)", exc)


def verdict_of(label: str, report: BenchmarkReport) -> str:
    """One line for a study run: its test error against the first reference (a measurement, no claim),
    or the target line for NASWOT (not decidable when the benchmark cannot tell searches apart)."""
    if label == "naswot (fixed)" and report.target is not None:
        return report.target.verdict
    rows = report.table.set_index("strategy")
    if not report.references or label not in rows.index:
        return "no comparison"
    reference = report.references[0]
    if label == reference:
        return f"reference of the comparison ({reference})"
    key = ref_key(reference)
    ratio, p = rows.loc[label].get(f"error_ratio_vs_{key}", math.nan), rows.loc[label].get(f"p_vs_{key}", math.nan)
    if not math.isfinite(ratio):
        return f"no paired comparison with {reference}"
    return f"test error {ratio:.2f}x {reference}'s (median of paired repeats, Wilcoxon p = {p:.3g})"
