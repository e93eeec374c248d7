"""The benchmark's comparison over repeated studies: the table, figures 3, 5 and 6, the target.

Every strategy runs R times (repeats) with different search seeds; the table
(:mod:`hpsearch.bench.comparison`) gives medians and bootstrap 95% CIs over repeats of the
retrained winner's test band-energy error, its test LDOS RMSE (the low-noise metric) and the
search compute, paired comparisons with the reference strategies on both test metrics (ratios
repeat by repeat, Wilcoxon signed-rank p-values), and the ridge and constant-mean baselines of the
benchmark's split, fitted once. Under the table, the verdict (:mod:`hpsearch.bench.verdict`): whether
TPE beats the null ("no search") with an exact paired test; only then are "A beats B" lines and the
target's met/missed stated, otherwise they read "not decidable". Files written to the results folder: ``comparison.md``/``.csv``
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

from hpsearch.bench.comparison import comparison_over_repeats, markdown_over_repeats, rows_over_repeats
from hpsearch.config.strategy import LDOS_METRIC, METRIC
from hpsearch.errors import DataError

if TYPE_CHECKING:
    from hpsearch.api import Experiment
    from hpsearch.bench.verdict import Verdict
    from hpsearch.model.baselines import BaselineReport
    from hpsearch.tune.results import StudyResult

__all__ = ["BenchmarkReport", "TargetCheck", "benchmark_baselines", "build_report", "check_target",
           "comparison_over_repeats", "markdown_over_repeats", "noise_floor", "rows_over_repeats", "study_rows",
           "verdict_markdown"]

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
    #: False when the benchmark cannot tell searches apart (hpsearch.bench.verdict): no met/missed then
    decidable: bool = True

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
        """PASS/MISS with the ratios; "not decidable" with the ratios alone when the benchmark cannot
        tell searches apart."""
        lo, hi = self.error_ratio_ci
        clo, chi = self.compute_ratio_ci
        error = f"NASWOT (fixed) test error = {self.error_ratio:.2f}x TPE's [{lo:.2f}, {hi:.2f}]"
        compute = f"search compute = 1/{1 / self.compute_ratio:.1f} of TPE's [1/{1 / chi:.1f}, 1/{1 / clo:.1f}]"
        medians = f"medians of {self.n_repeats} paired repeats"
        if not self.decidable:
            return (f"target not decidable (this benchmark cannot tell searches apart on this data): {error}; "
                    f"{compute}; {medians}")
        state = "PASS (holds over the CI)" if self.holds_with_ci else ("PASS at the median, not over the CI"
                                                                       if self.passed else "MISS")
        return (
            f"target {state}: {error} (target <= {TARGET_ERROR_FACTOR:g}x: {'ok' if self.error_ok else 'missed'}); "
            f"{compute} (target <= 1/{1 / TARGET_COMPUTE_FRACTION:.0f}: {'ok' if self.compute_ok else 'missed'}); "
            f"{medians}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The numbers, and met/missed only when decidable (None otherwise)."""
        judged = {"error_ok": self.error_ok, "compute_ok": self.compute_ok, "passed": self.passed,
                  "holds_with_ci": self.holds_with_ci}
        if not self.decidable:
            judged = dict.fromkeys(judged)
        return {**dataclasses.asdict(self), **judged, "verdict": self.verdict}


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
    #: ridge and constant-mean baselines of the benchmark's split (None: could not be computed)
    baselines: BaselineReport | None = None
    #: whether TPE beats the null, i.e. whether the benchmark can tell searches apart (hpsearch.bench.verdict)
    verdict: Verdict | None = None
    #: the "A beats B" lines; empty when the verdict does not decide
    claims: list[str] = dataclasses.field(default_factory=list)
    #: the store and split the studies ran on
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: study name -> (start, end) in Unix seconds, for the studies this run ran
    timeline: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)


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
    """One row per study: strategy, repeat, test error and test LDOS RMSE of the retrained winner,
    its skill over ridge, best validation error, search and retrain compute, wall time, parameters
    of the winner."""
    rows = []
    for stem, repeats in results.items():
        for repeat, result in enumerate(repeats):
            final = _final(result) or {}
            rows.append({
                "strategy": labels[stem], "repeat": repeat, "study": result.name,
                "test_error_mev_per_atom": _nan(result.test_error_mev_per_atom),
                "test_error_std_mev_per_atom": _nan(result.test_error_std_mev_per_atom),
                "test_ldos_rmse": _nan(result.test_ldos_rmse), "test_ldos_rmse_std": _nan(result.test_ldos_rmse_std),
                "skill": _nan(result.skill),
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


def _nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _final(result: StudyResult) -> dict[str, Any] | None:
    final = result.final
    if final is None:
        return None
    return final.to_dict() if hasattr(final, "to_dict") else dict(final)


def figure3(results: Mapping[str, Sequence[StudyResult]], labels: Mapping[str, str], cpus: Mapping[str, float],
            path: Path) -> Path:
    """The anytime plot: best validation objective so far against cumulative search compute, median
    and band over repeats, with the retrained winners' test result (median [CI]). With the LDOS
    objective: the validation LDOS RMSE (the root of the selecting MSE, scaled units) and, in a panel
    of its own, the test LDOS RMSE (the store's units); with band_energy both in meV/atom."""
    from hpsearch.bench.stats import summarize
    from hpsearch.tracking.anytime import plot_anytime

    ldos = any(r.objective_metric == LDOS_METRIC for repeats in results.values() for r in repeats)
    strategies = []
    for stem, repeats in results.items():
        runs = []
        for result in repeats:
            trials = result.trials
            if trials.empty:
                continue
            values = trials[LDOS_METRIC if ldos else METRIC].astype(float)
            runs.append((list(trials["trial_seconds"].astype(float).fillna(0.0) * cpus[stem]),
                         list(np.sqrt(values) if ldos else values)))
        test = summarize([_nan(r.test_ldos_rmse if ldos else r.test_error_mev_per_atom) for r in repeats])
        strategies.append({"strategy": labels[stem], "runs": runs, "test": (test.median, test.low, test.high)})
    if ldos:
        return plot_anytime(strategies, path, validation_label="LDOS RMSE (scaled, the objective)",
                            test_label="LDOS RMSE (the store's units, retrained winners)")
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
                 uri: str, folder: Path, wall_seconds: float, references: Sequence[str] = ("tpe",),
                 data: Mapping[str, Any] | None = None,
                 timeline: Mapping[str, tuple[float, float]] | None = None) -> BenchmarkReport:
    """Write the comparison over repeats into `folder` and return it (:mod:`hpsearch.bench.mlflow_runs`
    logs it to MLflow).

    `data`: the store and split the studies ran on (for the summary); `timeline`: each study's
    (start, end) in Unix seconds, for the studies this call ran."""
    from hpsearch.bench.strategies import LABELS
    from hpsearch.bench.verdict import check_verdict, strategy_claims

    runs = study_rows(results, LABELS)
    present = set(runs["strategy"]) if not runs.empty else set()
    references = [r for r in references if r in present]
    table = comparison_over_repeats(runs, references) if not runs.empty else pd.DataFrame()
    baselines = benchmark_baselines(results, experiments)
    verdict = check_verdict(runs)
    target = check_target(runs) if not runs.empty else None
    if target is not None:
        target = dataclasses.replace(target, decidable=verdict.decidable)
    claims = strategy_claims(table, references, verdict)
    markdown = markdown_over_repeats(table, references, baselines) if not table.empty else "(no studies)"
    markdown += "\n\n" + verdict_markdown(verdict, claims, target)
    runs.to_csv(folder / "studies.csv", index=False)
    table.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(markdown + "\n")
    report = BenchmarkReport(table, markdown, folder, _figures(results, experiments, folder), target, None,
                             wall_seconds, runs, noise_floor(results), list(references), baselines=baselines,
                             verdict=verdict, claims=claims, data=dict(data or {}), timeline=dict(timeline or {}))
    report.kendall = figure5(results.get("tpe-pruner", []), folder / "figure5_naswot_vs_error.png")
    if report.kendall is not None:
        report.figures["figure5"] = folder / "figure5_naswot_vs_error.png"
    summary = _summary(report, results, experiments, uri, mlflow_experiment_of(experiments))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return report


def mlflow_experiment_of(experiments: Mapping[str, Sequence[Experiment]]) -> str:
    """The MLflow experiment every study of the benchmark logs to."""
    return next(iter(experiments.values()))[0].config.tracking.experiment or "paper"


def _figures(results: Mapping[str, Sequence[StudyResult]], experiments: Mapping[str, Sequence[Experiment]],
             folder: Path) -> dict[str, Path]:
    """Figures 3 and 6 (figure 5 comes with the Kendall tau)."""
    from hpsearch.bench.strategies import LABELS

    cpus = {stem: e[0].config.resources.cpus for stem, e in experiments.items()}
    figures = {"figure3": figure3(results, LABELS, cpus, folder / "figure3_error_vs_compute.png")}
    architectures = figure6(results, LABELS, folder / "figure6_architectures.png")
    if architectures is not None:
        figures["figure6"] = architectures
    return figures


def verdict_markdown(verdict: Verdict, claims: Sequence[str], target: TargetCheck | None) -> str:
    """The verdict section under the table: decidable or not, the strategy claims (only when
    decidable), the target line."""
    lines = ["## Verdict", "", f"**{verdict.text}**", ""]
    if verdict.decidable:
        lines += [f"- {claim}" for claim in claims] or ["- no strategy differs from a reference at p <= 0.05"]
    else:
        lines.append("Strategy claims: not decidable (no strategy is said to beat another on this data).")
    if target is not None:
        lines += ["", target.verdict]
    return "\n".join(lines)


def benchmark_baselines(results: Mapping[str, Sequence[StudyResult]],
                        experiments: Mapping[str, Sequence[Experiment]]) -> BaselineReport | None:
    """The ridge and constant-mean baselines of the benchmark's split (its first experiment's
    store and split), computed once: a study's own baselines when one has them for that split."""
    from hpsearch.data.generate import resolve_store
    from hpsearch.tune.final import study_baselines
    from hpsearch.tune.runner import resolve_split

    config = next(iter(experiments.values()))[0].config
    store = resolve_store(config.dataset.store, key="dataset.store")
    split = resolve_split(config, store)
    for repeats in results.values():
        for result in repeats:
            known = result.baselines
            if known is not None and known.split == split.to_dict() and Path(known.store) == store:
                return known
    return study_baselines(config, store, split)  # type: ignore[no-any-return]


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
        "verdict": report.verdict.to_dict() if report.verdict is not None else None, "claims": report.claims,
        "data": report.data, "timeline": report.timeline,
        "target": report.target.to_dict() if report.target else None, "noise_floor": report.noise,
        "baselines": report.baselines.to_dict() if report.baselines is not None else None,
        "kendall_tau": report.kendall, "figures": {k: str(v) for k, v in report.figures.items()},
        "studies": {stem: [{"name": r.name, "folder": str(r.results_dir), "best_config": r.best_config,
                            "final": _final(r), "n_trials": len(r.trials), "status_counts": r.counts(),
                            "config": experiments[stem][i].config.model_dump(mode="json")}
                           for i, r in enumerate(repeats)]
                    for stem, repeats in results.items()},
    }
