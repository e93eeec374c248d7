"""The benchmark's comparison: the table (read back from MLflow), figures 3, 5 and 6, the target.

Files written to the results folder: ``comparison.md``/``.csv``, ``figure3_error_vs_compute.png``,
``figure5_naswot_vs_error.png``, ``figure6_architectures.png``, ``summary.json``; the same files
are artifacts of a "comparison" run in the benchmark's MLflow experiment.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hpsearch.errors import DataError

if TYPE_CHECKING:
    from hpsearch.api import Experiment
    from hpsearch.tune.results import StudyResult

logger = logging.getLogger(__name__)

#: The paper's headline: NASWOT (fixed) within this factor of TPE's error ...
TARGET_ERROR_FACTOR = 2.0
#: ... at no more than this fraction of TPE's compute.
TARGET_COMPUTE_FRACTION = 1.0 / 50.0


@dataclasses.dataclass(frozen=True)
class TargetCheck:
    """NASWOT (fixed) against TPE: error ratio (retrained means) and compute ratio (core-seconds)."""

    naswot_error_mev_per_atom: float
    tpe_error_mev_per_atom: float
    naswot_core_seconds: float
    tpe_core_seconds: float

    @property
    def error_ratio(self) -> float:
        return self.naswot_error_mev_per_atom / self.tpe_error_mev_per_atom

    @property
    def compute_ratio(self) -> float:
        return self.naswot_core_seconds / self.tpe_core_seconds

    @property
    def error_ok(self) -> bool:
        return self.error_ratio <= TARGET_ERROR_FACTOR

    @property
    def compute_ok(self) -> bool:
        return self.compute_ratio <= TARGET_COMPUTE_FRACTION

    @property
    def passed(self) -> bool:
        return self.error_ok and self.compute_ok

    @property
    def verdict(self) -> str:
        return (
            f"target {'PASS' if self.passed else 'MISS'}: NASWOT (fixed) error "
            f"{self.naswot_error_mev_per_atom:.3g} meV/atom = {self.error_ratio:.2f}x TPE's "
            f"{self.tpe_error_mev_per_atom:.3g} (target <= {TARGET_ERROR_FACTOR:g}x: "
            f"{'ok' if self.error_ok else 'missed'}); compute {self.naswot_core_seconds:.0f} core-s = "
            f"1/{1 / self.compute_ratio:.1f} of TPE's {self.tpe_core_seconds:.0f} (target <= 1/"
            f"{1 / TARGET_COMPUTE_FRACTION:.0f}: {'ok' if self.compute_ok else 'missed'})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "error_ratio": self.error_ratio, "compute_ratio": self.compute_ratio,
                "error_ok": self.error_ok, "compute_ok": self.compute_ok, "passed": self.passed,
                "verdict": self.verdict}


@dataclasses.dataclass
class BenchmarkReport:
    """What the benchmark measured and where it wrote it."""

    table: pd.DataFrame
    markdown: str
    folder: Path
    figures: dict[str, Path]
    target: TargetCheck | None
    kendall: dict[str, Any] | None
    wall_seconds: float
    server_url: str | None = None
    server_pid: int | None = None


def check_target(table: pd.DataFrame, naswot: str = "naswot (fixed)", reference: str = "tpe") -> TargetCheck | None:
    """The target check from the comparison table (None when either row or a number is missing)."""
    rows = {s: table[table["strategy"] == s] for s in (naswot, reference)}
    if any(r.empty for r in rows.values()):
        return None

    def error(row: pd.DataFrame) -> float:
        mean = float(row["error_mean_mev_per_atom"].iloc[0])
        return mean if math.isfinite(mean) else float(row["best_trial_error_mev_per_atom"].iloc[0])

    check = TargetCheck(error(rows[naswot]), error(rows[reference]), float(rows[naswot]["core_seconds"].iloc[0]),
                        float(rows[reference]["core_seconds"].iloc[0]))
    values = (check.naswot_error_mev_per_atom, check.tpe_error_mev_per_atom, check.tpe_core_seconds)
    return check if all(math.isfinite(v) and v > 0 for v in values) else None


def mlflow_table(uri: str, experiment: str, study_uids: Mapping[str, str]) -> pd.DataFrame:
    """The comparison table of exactly these studies (study uid -> label) as MLflow holds them."""
    from hpsearch.tracking.compare import comparison_table, study_runs

    runs = study_runs(experiment, uri)
    uid_column = "tags.hpsearch.study_uid"
    runs = runs[runs[uid_column].isin(list(study_uids))] if uid_column in runs else runs.iloc[0:0]
    if len(runs) != len(study_uids):
        logger.warning("MLflow holds %d of the %d studies of this benchmark (a server outage? see each "
                       "study's mlflow-journal)", len(runs), len(study_uids))
    # the benchmark's labels already name the scheduler ("tpe + naswot-pruner")
    runs = runs.assign(**{"params.strategy": runs[uid_column].map(dict(study_uids)), "params.scheduler": "none"})
    return comparison_table(runs, reference="tpe")


def _final(result: StudyResult) -> dict[str, Any] | None:
    final = result.final
    if final is None:
        return None
    return final.to_dict() if hasattr(final, "to_dict") else dict(final)


def figure3(results: Mapping[str, StudyResult], labels: Mapping[str, str], cpus: Mapping[str, float],
            path: Path) -> Path:
    """Best error so far against cumulative core-seconds, per study, with the retrained winner."""
    from hpsearch.tracking.plots import plot_error_vs_compute

    studies = []
    for stem, result in results.items():
        trials = result.trials
        final = _final(result) or {}
        studies.append({
            "strategy": labels[stem],
            "trials": pd.DataFrame({
                "core_seconds": trials["trial_seconds"].astype(float).fillna(0.0) * cpus[stem],
                "band_energy_error_mev_per_atom": trials["error_mev_per_atom"].astype(float),
            }),
            "retrain_mean": final.get("mean"), "retrain_std": final.get("std"),
        })
    return plot_error_vs_compute(studies, path)


def figure5(result: StudyResult | None, path: Path) -> dict[str, Any] | None:
    """Kendall tau between NASWOT score and trained error over the trials that carry both."""
    from hpsearch.scoring.study import naswot_error_study

    if result is None or "naswot_score" not in result.trials:
        return None
    trials = result.trials
    both = trials[trials["naswot_score"].notna() & trials["error_mev_per_atom"].notna()]
    pairs = [(float(s), float(e)) for s, e in zip(both["naswot_score"], both["error_mev_per_atom"])]
    try:
        study = naswot_error_study(pairs, figure_path=path, labels=[str(t) for t in both["trial_id"]],
                                   title=f"NASWOT score vs trained error ({result.name})")
    except DataError as exc:
        logger.warning("no figure 5: %s", exc)
        return None
    return {"n": study.n, "n_excluded": study.n_excluded, "tau_paper": study.tau_paper,
            "p_value_paper": study.p_value_paper, "tau_v1": study.tau_v1, "study": result.name,
            "paper_tau": -0.318}


def figure6(results: Mapping[str, StudyResult], labels: Mapping[str, str], path: Path) -> Path | None:
    """The winning architectures side by side."""
    from hpsearch.tracking.plots import architecture_in_words, plot_architectures

    winners = []
    for stem, result in results.items():
        final = _final(result)
        if final and final.get("architecture"):
            winners.append({"strategy": labels[stem], **final["architecture"]})
    if not winners:
        return None
    lines = [f"{w['strategy']}: {architecture_in_words(w['n_in'], w['widths'], w['activations'], w['n_out'])}"
             for w in winners]
    path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    return plot_architectures(winners, path)


def build_report(results: Mapping[str, StudyResult], experiments: Mapping[str, Experiment], uri: str,
                 folder: Path, wall_seconds: float) -> BenchmarkReport:
    """Write the comparison into `folder` and into a "comparison" MLflow run; return it."""
    from hpsearch.bench.paper import LABELS
    from hpsearch.tracking.compare import markdown_table
    from hpsearch.tune.study_tracking import study_tracker

    uids: dict[str, str] = {}
    for stem, experiment in experiments.items():
        tracker = study_tracker(experiment.config, experiment.config.results_dir)
        if tracker is not None:
            uids[tracker.study_uid] = LABELS[stem]
    mlflow_experiment = next(iter(experiments.values())).config.tracking.experiment or "paper"
    table = mlflow_table(uri, mlflow_experiment, uids)
    markdown = markdown_table(table)
    table.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(markdown + "\n")
    cpus = {stem: e.config.resources.cpus for stem, e in experiments.items()}
    figures = {"figure3": figure3(results, LABELS, cpus, folder / "figure3_error_vs_compute.png")}
    kendall = figure5(results.get("tpe-pruner"), folder / "figure5_naswot_vs_error.png")
    if kendall is not None:
        figures["figure5"] = folder / "figure5_naswot_vs_error.png"
    architectures = figure6(results, LABELS, folder / "figure6_architectures.png")
    if architectures is not None:
        figures["figure6"] = architectures
    target = check_target(table)
    report = BenchmarkReport(table, markdown, folder, figures, target, kendall, wall_seconds)
    summary = _summary(report, results, experiments, uri, mlflow_experiment)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _log_comparison(report, uri, mlflow_experiment)
    return report


def _summary(report: BenchmarkReport, results: Mapping[str, StudyResult], experiments: Mapping[str, Experiment],
             uri: str, mlflow_experiment: str) -> dict[str, Any]:
    import os
    import platform

    return {
        "tracking_uri": uri, "mlflow_experiment": mlflow_experiment, "wall_seconds": report.wall_seconds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "table": report.table.to_dict("records"), "target": report.target.to_dict() if report.target else None,
        "kendall_tau": report.kendall, "figures": {k: str(v) for k, v in report.figures.items()},
        "studies": {stem: {"name": r.name, "folder": str(r.results_dir), "best_config": r.best_config,
                           "final": _final(r), "n_trials": len(r.trials), "status_counts": r.counts(),
                           "config": experiments[stem].config.model_dump(mode="json")}
                    for stem, r in results.items()},
    }


def _log_comparison(report: BenchmarkReport, uri: str, mlflow_experiment: str) -> None:
    """A "comparison" run holding the table, figures and summary (never fails the benchmark)."""
    import uuid

    from hpsearch.tracking.tracker import StudyTracker

    tracker = StudyTracker(uri, mlflow_experiment, "comparison", report.folder, study_uid=uuid.uuid4().hex[:12])
    tracker.start(tags={"hpsearch.role": "comparison"})
    for name in ("comparison.md", "comparison.csv", "summary.json", "figure6_architectures.txt"):
        if (report.folder / name).is_file():
            tracker.log_artifact(report.folder / name)
    for path in report.figures.values():
        tracker.log_artifact(path, "figures")
    metrics: dict[str, float] = {}
    if report.target is not None:
        metrics.update({"target_error_ratio": report.target.error_ratio,
                        "target_compute_ratio": report.target.compute_ratio,
                        "target_passed": float(report.target.passed)})
    if report.kendall is not None:
        metrics["kendall_tau_naswot_error"] = float(report.kendall["tau_paper"])
    left = tracker.finish({k: v for k, v in metrics.items() if math.isfinite(v)})
    if left:
        logger.warning("%d MLflow operations of the comparison run are pending in %s", left, tracker.folder)
