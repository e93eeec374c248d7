"""The benchmark's comparison over repeated studies: the table, figures 3, 5 and 6, the target.

Every strategy runs R times (repeats) with different search seeds; the table gives medians and
bootstrap 95% CIs over repeats of the retrained winner's test error and of the search compute,
and a paired comparison with the reference strategies (ratio of test errors repeat by repeat,
Wilcoxon signed-rank p-value). Files written to the results folder: ``comparison.md``/``.csv``
(per strategy), ``studies.csv`` (per study), ``figure3_error_vs_compute.png``,
``figure5_naswot_vs_error.png``, ``figure6_architectures.png``, ``summary.json``; the same files
are artifacts of a "comparison" run in the benchmark's MLflow experiment.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpsearch.config.strategy import METRIC
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
    """NASWOT (fixed) against TPE over paired repeats: test-error ratio and search-compute ratio,
    each a median with its bootstrap 95% CI."""

    error_ratio: float
    error_ratio_ci: tuple[float, float]
    compute_ratio: float
    compute_ratio_ci: tuple[float, float]
    n_repeats: int
    naswot_error_mev_per_atom: float
    tpe_error_mev_per_atom: float
    naswot_core_seconds: float
    tpe_core_seconds: float

    @property
    def error_ok(self) -> bool:
        return self.error_ratio <= TARGET_ERROR_FACTOR

    @property
    def compute_ok(self) -> bool:
        return self.compute_ratio <= TARGET_COMPUTE_FRACTION

    @property
    def passed(self) -> bool:
        """The medians meet both targets."""
        return self.error_ok and self.compute_ok

    @property
    def holds_with_ci(self) -> bool:
        """Even the upper ends of both CIs meet the targets."""
        return self.error_ratio_ci[1] <= TARGET_ERROR_FACTOR and self.compute_ratio_ci[1] <= TARGET_COMPUTE_FRACTION

    @property
    def verdict(self) -> str:
        state = "PASS (holds over the CI)" if self.holds_with_ci else ("PASS at the median, not over the CI"
                                                                       if self.passed else "MISS")
        lo, hi = self.error_ratio_ci
        clo, chi = self.compute_ratio_ci
        return (
            f"target {state}: NASWOT (fixed) test error = {self.error_ratio:.2f}x TPE's [{lo:.2f}, {hi:.2f}] "
            f"(target <= {TARGET_ERROR_FACTOR:g}x: {'ok' if self.error_ok else 'missed'}); search compute = "
            f"1/{1 / self.compute_ratio:.1f} of TPE's [1/{1 / chi:.1f}, 1/{1 / clo:.1f}] (target <= 1/"
            f"{1 / TARGET_COMPUTE_FRACTION:.0f}: {'ok' if self.compute_ok else 'missed'}); medians of "
            f"{self.n_repeats} paired repeats"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "error_ok": self.error_ok, "compute_ok": self.compute_ok,
                "passed": self.passed, "holds_with_ci": self.holds_with_ci, "verdict": self.verdict}


@dataclasses.dataclass
class BenchmarkReport:
    """What the benchmark measured and where it wrote it. `table`: one row per strategy (medians and
    CIs over repeats); `runs`: one row per study (strategy x repeat)."""

    table: pd.DataFrame
    markdown: str
    folder: Path
    figures: dict[str, Path]
    target: TargetCheck | None
    kendall: dict[str, Any] | None
    wall_seconds: float
    runs: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    noise: dict[str, Any] = dataclasses.field(default_factory=dict)
    references: list[str] = dataclasses.field(default_factory=list)
    server_url: str | None = None
    server_pid: int | None = None


def check_target(runs: pd.DataFrame, naswot: str = "naswot (fixed)", reference: str = "tpe") -> TargetCheck | None:
    """The target check from the per-study rows (None when either strategy or a number is missing)."""
    from hpsearch.bench.stats import paired_comparison, summarize

    a, b = (runs[runs["strategy"] == s].sort_values("repeat") for s in (naswot, reference))
    if a.empty or b.empty:
        return None
    common = sorted(set(a["repeat"]) & set(b["repeat"]))
    a, b = a[a["repeat"].isin(common)], b[b["repeat"].isin(common)]
    errors = paired_comparison(list(a["test_error_mev_per_atom"]), list(b["test_error_mev_per_atom"]))
    compute = paired_comparison(list(a["search_core_s"]), list(b["search_core_s"]))
    if errors.n_pairs == 0 or compute.n_pairs == 0:
        return None
    return TargetCheck(
        errors.ratio.median, (errors.ratio.low, errors.ratio.high), compute.ratio.median,
        (compute.ratio.low, compute.ratio.high), errors.n_pairs,
        summarize(list(a["test_error_mev_per_atom"])).median, summarize(list(b["test_error_mev_per_atom"])).median,
        summarize(list(a["search_core_s"])).median, summarize(list(b["search_core_s"])).median,
    )


def study_rows(results: Mapping[str, Sequence[StudyResult]], labels: Mapping[str, str]) -> pd.DataFrame:
    """One row per study: strategy, repeat, test error of the retrained winner, best validation
    error, search and retrain compute, wall time, parameters of the winner."""
    rows = []
    for stem, repeats in results.items():
        for repeat, result in enumerate(repeats):
            final = _final(result) or {}
            rows.append({
                "strategy": labels[stem], "repeat": repeat, "study": result.name,
                "test_error_mev_per_atom": _nan(result.test_error_mev_per_atom),
                "test_error_std_mev_per_atom": _nan(result.test_error_std_mev_per_atom),
                "best_val_error_mev_per_atom": _nan(result.best_val_error_mev_per_atom),
                "search_core_s": result.core_seconds, "retrain_core_s": result.retrain_core_seconds,
                "wall_seconds": result.wall_seconds, "n_parameters": final.get("n_parameters"),
                "trials": len(result.trials),
            })
    return pd.DataFrame(rows)


def noise_floor(results: Mapping[str, Sequence[StudyResult]]) -> dict[str, Any]:
    """How much of the spread of test errors is seed noise: the spread over retrain seeds of one
    architecture (sample std within each study, median over studies) against the spread over the
    winners of every study (sample std of their mean test errors). A ratio near 1 means the
    ranking of winners is mostly noise."""
    within = [float(np.std(e, ddof=1)) for repeats in results.values() for r in repeats
              for e in [[v for v in r.test_errors_mev_per_atom if math.isfinite(v)]] if len(e) > 1]
    means = [float(r.test_error_mev_per_atom) for repeats in results.values() for r in repeats
             if r.test_error_mev_per_atom is not None and math.isfinite(r.test_error_mev_per_atom)]
    seed_std = float(np.median(within)) if within else math.nan
    between = float(np.std(means, ddof=1)) if len(means) > 1 else math.nan
    return {"retrain_seed_std_mev_per_atom": seed_std, "between_winners_std_mev_per_atom": between,
            "ratio": seed_std / between if between and math.isfinite(between) else math.nan,
            "n_studies": len(means)}


def comparison_over_repeats(runs: pd.DataFrame, references: Sequence[str] = ("tpe",)) -> pd.DataFrame:
    """Per strategy: medians with bootstrap 95% CIs over repeats, and paired comparisons with each reference."""
    from hpsearch.bench.stats import paired_comparison, summarize

    table = []
    for strategy, group in runs.groupby("strategy", sort=False):
        group = group.sort_values("repeat")
        row: dict[str, Any] = {"strategy": strategy, "repeats": len(group)}
        for column in ("test_error_mev_per_atom", "best_val_error_mev_per_atom", "search_core_s", "retrain_core_s",
                       "wall_seconds"):
            s = summarize(list(group[column]))
            row.update({column: s.median, f"{column}_ci_low": s.low, f"{column}_ci_high": s.high})
        for reference in references:
            ref = runs[runs["strategy"] == reference].sort_values("repeat")
            common = sorted(set(group["repeat"]) & set(ref["repeat"]))
            mine, theirs = group[group["repeat"].isin(common)], ref[ref["repeat"].isin(common)]
            key = _ref_key(reference)
            if strategy == reference or not common:
                row.update({f"error_ratio_vs_{key}": 1.0 if strategy == reference else math.nan,
                            f"p_vs_{key}": math.nan, f"speedup_vs_{key}": 1.0 if strategy == reference else math.nan})
                continue
            errors = paired_comparison(list(mine["test_error_mev_per_atom"]), list(theirs["test_error_mev_per_atom"]))
            cost = paired_comparison(list(theirs["search_core_s"]), list(mine["search_core_s"]))
            row.update({f"error_ratio_vs_{key}": errors.ratio.median, f"error_ratio_vs_{key}_ci_low": errors.ratio.low,
                        f"error_ratio_vs_{key}_ci_high": errors.ratio.high, f"p_vs_{key}": errors.p_value,
                        f"better_than_{key}": errors.n_better, f"speedup_vs_{key}": cost.ratio.median})
        table.append(row)
    return pd.DataFrame(table)


def _ref_key(reference: str) -> str:
    return reference.replace(" + ", "_").replace(" ", "_").replace("-", "_")


def _nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def rows_over_repeats(table: pd.DataFrame, references: Sequence[str] = ("tpe",)) -> tuple[list[str], list[list[str]]]:
    """Header and rows of strings: medians [95% CI] over repeats, paired comparisons with the references."""
    def ci(row: Any, column: str, fmt: str = ".3g") -> str:
        value = row[column]
        if not math.isfinite(value):
            return "n/a"
        return f"{value:{fmt}} [{row[f'{column}_ci_low']:{fmt}}, {row[f'{column}_ci_high']:{fmt}}]"

    head = ["strategy", "repeats", "test error (meV/atom)", "best validation error", "search compute (core-s)",
            "retrain compute (core-s)"]
    for reference in references:
        head += [f"test error / {reference} (paired)", f"Wilcoxon p vs {reference}", f"speed-up vs {reference}"]
    rows = []
    for _, row in table.iterrows():
        cells = [str(row["strategy"]), str(row["repeats"]), ci(row, "test_error_mev_per_atom"),
                 ci(row, "best_val_error_mev_per_atom"), ci(row, "search_core_s", ".0f"), ci(row, "retrain_core_s", ".0f")]
        for reference in references:
            key = _ref_key(reference)
            if row["strategy"] == reference:
                cells += ["1 (reference)", "", ""]
                continue
            ratio = row.get(f"error_ratio_vs_{key}", math.nan)
            cells.append(ci(row, f"error_ratio_vs_{key}", ".2f") if math.isfinite(ratio) else "n/a")
            p = row.get(f"p_vs_{key}", math.nan)
            cells.append(f"{p:.3g}" if math.isfinite(p) else "n/a")
            speed = row.get(f"speedup_vs_{key}", math.nan)
            cells.append(f"{speed:.1f}x" if math.isfinite(speed) else "n/a")
        rows.append(cells)
    return head, rows


def markdown_over_repeats(table: pd.DataFrame, references: Sequence[str] = ("tpe",)) -> str:
    """The comparison as Markdown (see :func:`rows_over_repeats`)."""
    head, rows = rows_over_repeats(table, references)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _final(result: StudyResult) -> dict[str, Any] | None:
    final = result.final
    if final is None:
        return None
    return final.to_dict() if hasattr(final, "to_dict") else dict(final)


def figure3(results: Mapping[str, Sequence[StudyResult]], labels: Mapping[str, str], cpus: Mapping[str, float],
            path: Path) -> Path:
    """The anytime plot: best validation error so far against cumulative search compute, median and
    band over repeats, with the retrained winners' test error (median [CI]) as dots."""
    from hpsearch.bench.stats import summarize
    from hpsearch.tracking.anytime import plot_anytime

    strategies = []
    for stem, repeats in results.items():
        runs = []
        for result in repeats:
            trials = result.trials
            if trials.empty:
                continue
            runs.append((list(trials["trial_seconds"].astype(float).fillna(0.0) * cpus[stem]),
                         list(trials[METRIC].astype(float))))
        test = summarize([_nan(r.test_error_mev_per_atom) for r in repeats])
        strategies.append({"strategy": labels[stem], "runs": runs, "test": (test.median, test.low, test.high)})
    return plot_anytime(strategies, path)


def figure5(repeats: Sequence[StudyResult], path: Path) -> dict[str, Any] | None:
    """Kendall tau between NASWOT score and validation error over the trained trials of every repeat."""
    from hpsearch.scoring.study import naswot_error_study

    pairs, labels = [], []
    for result in repeats:
        trials = result.trials
        if "naswot_score" not in trials or METRIC not in trials:
            continue
        both = trials[trials["naswot_score"].notna() & trials[METRIC].notna()]
        pairs += [(float(s), float(e)) for s, e in zip(both["naswot_score"], both[METRIC])]
        labels += [f"{result.name}/{t}" for t in both["trial_id"]]
    if not pairs:
        return None
    try:
        study = naswot_error_study(pairs, figure_path=path, labels=labels,
                                   title=f"NASWOT score vs validation error ({len(repeats)} studies)")
    except DataError as exc:
        logger.warning("no figure 5: %s", exc)
        return None
    return {"n": study.n, "n_excluded": study.n_excluded, "tau_paper": study.tau_paper,
            "p_value_paper": study.p_value_paper, "tau_v1": study.tau_v1,
            "study": ", ".join(r.name for r in repeats), "paper_tau": -0.318}


def figure6(results: Mapping[str, Sequence[StudyResult]], labels: Mapping[str, str], path: Path) -> Path | None:
    """The winning architectures of the first repeat side by side (every repeat's in the .txt)."""
    from hpsearch.tracking.plots import architecture_in_words, plot_architectures

    winners, lines = [], []
    for stem, repeats in results.items():
        for number, result in enumerate(repeats):
            final = _final(result)
            if final and final.get("architecture"):
                arch = final["architecture"]
                if number == 0:
                    winners.append({"strategy": labels[stem], **arch})
                words = architecture_in_words(arch["n_in"], arch["widths"], arch["activations"], arch["n_out"])
                lines.append(f"{labels[stem]} (repeat {number}): {words}")
    if not winners:
        return None
    path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    return plot_architectures(winners, path)


def build_report(results: Mapping[str, Sequence[StudyResult]], experiments: Mapping[str, Sequence[Experiment]],
                 uri: str, folder: Path, wall_seconds: float, references: Sequence[str] = ("tpe",)) -> BenchmarkReport:
    """Write the comparison over repeats into `folder` and into a "comparison" MLflow run; return it."""
    from hpsearch.bench.strategies import LABELS

    runs = study_rows(results, LABELS)
    present = set(runs["strategy"]) if not runs.empty else set()
    references = [r for r in references if r in present]
    table = comparison_over_repeats(runs, references) if not runs.empty else pd.DataFrame()
    markdown = markdown_over_repeats(table, references) if not table.empty else "(no studies)"
    runs.to_csv(folder / "studies.csv", index=False)
    table.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(markdown + "\n")
    cpus = {stem: e[0].config.resources.cpus for stem, e in experiments.items()}
    figures = {"figure3": figure3(results, LABELS, cpus, folder / "figure3_error_vs_compute.png")}
    kendall = figure5(results.get("tpe-pruner", []), folder / "figure5_naswot_vs_error.png")
    if kendall is not None:
        figures["figure5"] = folder / "figure5_naswot_vs_error.png"
    architectures = figure6(results, LABELS, folder / "figure6_architectures.png")
    if architectures is not None:
        figures["figure6"] = architectures
    target = check_target(runs) if not runs.empty else None
    report = BenchmarkReport(table, markdown, folder, figures, target, kendall, wall_seconds, runs,
                             noise_floor(results), list(references))
    mlflow_experiment = next(iter(experiments.values()))[0].config.tracking.experiment or "paper"
    summary = _summary(report, results, experiments, uri, mlflow_experiment)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _log_comparison(report, uri, mlflow_experiment)
    _annotate_studies(report, experiments, uri)
    return report


def _annotate_studies(report: BenchmarkReport, experiments: Mapping[str, Sequence[Experiment]], uri: str) -> None:
    """Put the comparison on every study's parent run, so the MLflow runs table shows it: the
    strategy's test error median and CI over repeats, this repeat's speed-up vs each reference, the
    paired p-value, and the target verdict as a tag and in the run's description."""
    from mlflow.tracking import MlflowClient

    from hpsearch.bench.strategies import LABELS
    from hpsearch.tune.study_tracking import study_tracker

    if report.table.empty:
        return
    rows = report.table.set_index("strategy")
    try:
        client = MlflowClient(uri)
        for stem, repeats in experiments.items():
            label = LABELS[stem]
            if label not in rows.index:
                continue
            row = rows.loc[label]
            for number, experiment in enumerate(repeats):
                tracker = study_tracker(experiment.config, experiment.config.results_dir)
                run_id = tracker.run_id() if tracker is not None else None
                if run_id is None:
                    continue
                metrics = {"strategy_test_error_median_mev_per_atom": row["test_error_mev_per_atom"],
                           "strategy_test_error_ci_low_mev_per_atom": row["test_error_mev_per_atom_ci_low"],
                           "strategy_test_error_ci_high_mev_per_atom": row["test_error_mev_per_atom_ci_high"]}
                mine = report.runs[(report.runs["strategy"] == label) & (report.runs["repeat"] == number)]
                for reference in report.references:
                    key = _ref_key(reference)
                    theirs = report.runs[(report.runs["strategy"] == reference) & (report.runs["repeat"] == number)]
                    if not mine.empty and not theirs.empty:
                        metrics[f"speedup_vs_{key}"] = float(theirs["search_core_s"].iloc[0]) / float(
                            mine["search_core_s"].iloc[0])
                    metrics[f"strategy_p_vs_{key}"] = row.get(f"p_vs_{key}", math.nan)
                for name, value in metrics.items():
                    if value is not None and math.isfinite(float(value)):
                        client.log_metric(run_id, name, float(value))
                verdict = _verdict_of(label, report)
                client.set_tag(run_id, "hpsearch.comparison", verdict)
                client.set_tag(run_id, "mlflow.note.content", f"{label}, repeat {number + 1} of {len(repeats)}. "
                               f"{verdict}. Selected on validation; test error of the winner retrained.")
    except Exception as exc:  # noqa: BLE001 - the comparison files exist: MLflow annotations are a convenience
        logger.warning("could not annotate the studies' MLflow runs with the comparison (%s)", exc)


def _verdict_of(label: str, report: BenchmarkReport) -> str:
    """One line: this strategy's test error against the first reference, or the target verdict for NASWOT."""
    if label == "naswot (fixed)" and report.target is not None:
        return report.target.verdict
    rows = report.table.set_index("strategy")
    if not report.references or label not in rows.index:
        return "no comparison"
    reference = report.references[0]
    if label == reference:
        return f"reference of the comparison ({reference})"
    key = _ref_key(reference)
    ratio, p = rows.loc[label].get(f"error_ratio_vs_{key}", math.nan), rows.loc[label].get(f"p_vs_{key}", math.nan)
    if not math.isfinite(ratio):
        return f"no paired comparison with {reference}"
    return f"test error {ratio:.2f}x {reference}'s (median of paired repeats, Wilcoxon p = {p:.3g})"


def _summary(report: BenchmarkReport, results: Mapping[str, Sequence[StudyResult]],
             experiments: Mapping[str, Sequence[Experiment]], uri: str, mlflow_experiment: str) -> dict[str, Any]:
    import os
    import platform

    return {
        "protocol": "validation selects; the winner is retrained with new seeds and tested once; medians and "
                    "bootstrap 95% CIs over repeats with different search seeds; paired Wilcoxon signed-rank tests",
        "tracking_uri": uri, "mlflow_experiment": mlflow_experiment, "wall_seconds": report.wall_seconds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "table": report.table.to_dict("records"), "runs": report.runs.to_dict("records"),
        "target": report.target.to_dict() if report.target else None, "noise_floor": report.noise,
        "kendall_tau": report.kendall, "figures": {k: str(v) for k, v in report.figures.items()},
        "studies": {stem: [{"name": r.name, "folder": str(r.results_dir), "best_config": r.best_config,
                            "final": _final(r), "n_trials": len(r.trials), "status_counts": r.counts(),
                            "config": experiments[stem][i].config.model_dump(mode="json")}
                           for i, r in enumerate(repeats)]
                    for stem, repeats in results.items()},
    }


def _log_comparison(report: BenchmarkReport, uri: str, mlflow_experiment: str) -> None:
    """A "comparison" run holding the table, figures and summary (never fails the benchmark)."""
    import uuid

    from hpsearch.tracking.tracker import StudyTracker

    tracker = StudyTracker(uri, mlflow_experiment, "comparison", report.folder, study_uid=uuid.uuid4().hex[:12])
    tracker.start(tags={"hpsearch.role": "comparison"})
    for name in ("comparison.md", "comparison.csv", "studies.csv", "summary.json", "figure6_architectures.txt"):
        if (report.folder / name).is_file():
            tracker.log_artifact(report.folder / name)
    for path in report.figures.values():
        tracker.log_artifact(path, "figures")
    metrics: dict[str, float] = {}
    if report.target is not None:
        metrics.update({"target_error_ratio": report.target.error_ratio,
                        "target_error_ratio_ci_high": report.target.error_ratio_ci[1],
                        "target_compute_ratio": report.target.compute_ratio,
                        "target_passed": float(report.target.passed),
                        "target_holds_with_ci": float(report.target.holds_with_ci)})
    if report.kendall is not None:
        metrics["kendall_tau_naswot_error"] = float(report.kendall["tau_paper"])
    left = tracker.finish({k: v for k, v in metrics.items() if math.isfinite(v)})
    if left:
        logger.warning("%d MLflow operations of the comparison run are pending in %s", left, tracker.folder)
