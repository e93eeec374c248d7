"""Does NASWOT rank trained networks? Kendall tau between score and error (the paper's figure 5).

The paper found tau = -0.318 between its NASWOT mean score and the trained band-energy error
(negative: higher scores, lower errors). Both score conventions are reported: ``paper`` (eq. 13
as printed, maximised) and ``v1`` (the negative sum of the first NASWOT paper, also maximised),
so a user sees which one ranks networks better on their data.

Example:
    >>> study = naswot_error_study([(result, error_mev_per_atom), ...], figure_path="fig5.png")
    >>> study.tau_paper, study.tau_v1, study.n
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.errors import DataError
from hpsearch.scoring.naswot import NaswotResult, mean_score
from hpsearch.scoring.ranking import kendall_test

__all__ = [
    "PAPER_TAU", "NaswotErrorStudy", "StudyPoint", "naswot_error_study", "plot_study", "read_trials_csv",
    "score_conventions",
]

log = logging.getLogger(__name__)

#: The paper's value (figure 5) for comparison in reports.
PAPER_TAU = -0.318
Trial = tuple[NaswotResult | float, float]


@dataclasses.dataclass(frozen=True)
class StudyPoint:
    """One trained trial: its NASWOT mean score in both conventions and its error."""

    label: str
    score_paper: float
    score_v1: float
    error: float


@dataclasses.dataclass(frozen=True)
class NaswotErrorStudy:
    """Kendall tau between NASWOT score and error, for both conventions, on ``n`` trials.

    ``n_excluded`` trials had a degenerate score (worst value) or a non-finite error.
    Negative tau: higher scores go with lower errors (what a useful score needs).
    """

    n: int
    n_excluded: int
    tau_paper: float
    p_value_paper: float
    tau_v1: float
    p_value_v1: float
    points: tuple[StudyPoint, ...]
    error_label: str
    figure_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["figure_path"] = str(self.figure_path) if self.figure_path else None
        data["paper_tau"] = PAPER_TAU
        return data

    def summary(self) -> str:
        return (
            f"Kendall tau(NASWOT score, {self.error_label}) on n={self.n} trials "
            f"({self.n_excluded} excluded): paper convention {self.tau_paper:+.3f} "
            f"(p={self.p_value_paper:.2g}), v1 convention {self.tau_v1:+.3f} (p={self.p_value_v1:.2g}); "
            f"the paper found {PAPER_TAU:+.3f} (negative: higher score, lower error)"
        )


def score_conventions(score: NaswotResult | float) -> tuple[float, float] | None:
    """(S' paper, S' v1) of a result, or None when it is degenerate."""
    if isinstance(score, NaswotResult):
        if not score.ok:
            return None
        raw = np.asarray(score.scores, dtype=np.float64)
        paper = raw if score.convention == "paper" else -raw
        return mean_score(paper), mean_score(-paper)
    value = float(score)
    return (value, -value) if math.isfinite(value) else None


def naswot_error_study(
    trials: Sequence[Trial], figure_path: str | Path | None = None, labels: Sequence[str] | None = None,
    error_label: str = "band-energy error (meV/atom)", title: str | None = None,
) -> NaswotErrorStudy:
    """Kendall tau between NASWOT scores and trained errors, and (optionally) the scatter plot.

    Each trial is ``(score, error)``. ``score`` is a :class:`NaswotResult` (its per-initialisation
    scores give eq. 14 in both conventions exactly) or a float in the paper convention (its v1
    value is then taken as ``-score``, exact for one initialisation). Degenerate scores and
    non-finite errors are left out and counted in ``n_excluded``.
    """
    if labels is not None and len(labels) != len(trials):
        raise DataError(f"got {len(labels)} labels for {len(trials)} trials")
    points: list[StudyPoint] = []
    for i, (score, error) in enumerate(trials):
        both = score_conventions(score)
        if both is None or not math.isfinite(float(error)):
            continue
        label = labels[i] if labels is not None else str(i)
        points.append(StudyPoint(label, both[0], both[1], float(error)))
    if len(points) < 2:
        raise DataError(
            f"only {len(points)} of {len(trials)} trials have a valid score and a finite error: "
            "Kendall tau needs at least 2 (train more architectures)"
        )
    errors = [p.error for p in points]
    paper = kendall_test([p.score_paper for p in points], errors)
    v1 = kendall_test([p.score_v1 for p in points], errors)
    study = NaswotErrorStudy(
        n=len(points), n_excluded=len(trials) - len(points), tau_paper=paper.tau,
        p_value_paper=paper.p_value, tau_v1=v1.tau, p_value_v1=v1.p_value,
        points=tuple(points), error_label=error_label,
    )
    log.info("%s", study.summary())
    if figure_path is not None:
        study = dataclasses.replace(study, figure_path=plot_study(study, figure_path, title))
    return study


def plot_study(study: NaswotErrorStudy, path: str | Path, title: str | None = None) -> Path:
    """Scatter plots of error against score, one panel per convention, written to ``path`` (PNG)."""
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    errors = np.array([p.error for p in study.points])
    panels = (
        ([p.score_paper for p in study.points], study.tau_paper, "paper convention (eq. 13-14)"),
        ([p.score_v1 for p in study.points], study.tau_v1, "v1 convention (negative sum)"),
    )
    for axis, (scores, tau, name) in zip(figure.subplots(1, 2), panels):
        axis.scatter(scores, errors, s=22, alpha=0.8, edgecolors="none")
        axis.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        axis.set_xlabel("NASWOT mean score S' (eq. 14)")
        axis.set_ylabel(study.error_label)
        if np.all(errors > 0):
            axis.set_yscale("log")
        axis.set_title(f"{name}\nKendall tau = {tau:+.3f}  (n = {study.n})")
        axis.grid(alpha=0.3)
    figure.suptitle(title or f"NASWOT score vs trained error (paper: tau = {PAPER_TAU})")
    figure.savefig(path, dpi=150)
    return path


def read_trials_csv(path: str | Path) -> tuple[list[Trial], list[str]]:
    """Trials from a CSV: columns ``score`` (or ``score_paper``) and ``error`` (or
    ``error_mev_per_atom``), optional ``label`` and ``init_scores_paper`` (per-initialisation
    paper-convention scores joined by ``;``, which makes the v1 convention exact) and
    ``naswot_reason`` (non-empty: degenerate). The table ``run_naswot_study`` writes qualifies."""
    import csv

    trials: list[Trial] = []
    labels: list[str] = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        score_key = next((k for k in ("init_scores_paper", "score_paper", "score") if k in fields), None)
        error_key = next((k for k in ("error_mev_per_atom", "error") if k in fields), None)
        if score_key is None or error_key is None:
            raise DataError(f"{path}: need a score column (score or score_paper) and an error column "
                            f"(error or error_mev_per_atom), got {sorted(fields)}")
        for i, row in enumerate(reader):
            labels.append(row.get("label") or str(i))
            trials.append((_row_score(row, score_key, path, i), _float(row[error_key], path, i)))
    return trials, labels


def _float(text: str | None, path: str | Path, row: int) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError as exc:
        raise DataError(f"{path}, data row {row + 1}: {text!r} is not a number") from exc


def _row_score(row: dict[str, str], key: str, path: str | Path, i: int) -> NaswotResult | float:
    from hpsearch.scoring.naswot import WORST_SCORE

    if key != "init_scores_paper" or not row[key]:
        return _float(row.get("score_paper") or row.get("score"), path, i)
    scores = tuple(_float(v, path, i) for v in row[key].split(";"))
    reason = row.get("naswot_reason") or None
    return NaswotResult(WORST_SCORE if reason else mean_score(scores), scores, reason)
