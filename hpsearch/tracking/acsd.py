"""The descriptor scan's outputs: table, figures 7 and 8 (ACSD, and beside it the mutual
information of descriptors and LDOS), JSON, and its MLflow run.

:func:`write_outputs` writes ``acsd_scan.json``, ``acsd_table.md`` and the paper's figures 7 and
8 as PNGs (``acsd_vs_rcut.png``: one line per twojmax; ``acsd_vs_twojmax.png``: one line per
rcut) into the report's folder; :func:`log_scan` logs one MLflow parent run (params, the choice,
the PNGs) with a child run per setting (params rcut/twojmax, metrics acsd/acsd_std), which the
MLflow UI can compare. The scan itself is computed by :mod:`hpsearch.data.descriptor_scan`;
:func:`hpsearch.api.run_acsd_scan` runs both.

Example::

    files = write_outputs(report)
    run_id = log_scan(report, files)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpsearch.data.descriptor_scan import ScanReport
from hpsearch.descriptors.scan import Choice, SettingResult

__all__ = [
    "choice_text",
    "log_scan",
    "markdown_table",
    "plot_acsd_vs_rcut",
    "plot_acsd_vs_twojmax",
    "table_rows",
    "write_outputs",
    "write_report_json",
]

logger = logging.getLogger(__name__)

TABLE_HEADER = ("rcut (Å)", "twojmax", "components", "ACSD", "± std", "MI (nats)", "time (s)", "")


# --------------------------------------------------------------------------- outputs


def table_rows(results: Sequence[SettingResult], choice: Choice) -> list[tuple[str, ...]]:
    """One row per setting (TABLE_HEADER); the last column marks the choice and the minimum."""
    tied = set(choice.tied)
    rows = []
    for r in results:
        mark = []
        if (r.rcut, r.twojmax) == (choice.rcut, choice.twojmax):
            mark.append("chosen")
        if (r.rcut, r.twojmax) == (choice.minimum_rcut, choice.minimum_twojmax):
            mark.append("minimum")
        elif (r.rcut, r.twojmax) in tied:
            mark.append("tie")
        rows.append((f"{r.rcut:.4g}", str(r.twojmax), str(r.n_components), f"{r.acsd:.5f}",
                     f"{r.std:.5f}", f"{r.mi:.3f}", f"{r.seconds:.2f}", ", ".join(mark)))
    return rows


def markdown_table(results: Sequence[SettingResult], choice: Choice) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + " --- |" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results, choice)]
    return "\n".join(lines)


def choice_text(choice: Choice) -> str:
    return (f"chosen: rcut {choice.rcut:.4g} Å, twojmax {choice.twojmax} (J_max {choice.twojmax / 2:g}), "
            f"ACSD {choice.acsd:.5f} ± {choice.std:.5f}; minimum at rcut {choice.minimum_rcut:.4g}, "
            f"twojmax {choice.minimum_twojmax}; rule: {choice.rule} (tie_sigma {choice.tie_sigma:g})")


def write_outputs(report: ScanReport) -> dict[str, Path]:
    """JSON, markdown table and both figures into the report's folder."""
    report.folder.mkdir(parents=True, exist_ok=True)
    files = {
        "json": report.folder / "acsd_scan.json",
        "table": report.folder / "acsd_table.md",
        "rcut_png": plot_acsd_vs_rcut(report.results, report.choice, report.folder / "acsd_vs_rcut.png"),
        "twojmax_png": plot_acsd_vs_twojmax(report.results, report.choice, report.folder / "acsd_vs_twojmax.png"),
    }
    write_report_json(report)
    table = markdown_table(report.results, report.choice)
    files["table"].write_text(f"# ACSD scan {report.config.name}\n\n{table}\n\n{choice_text(report.choice)}\n")
    return files


def write_report_json(report: ScanReport) -> Path:
    """``acsd_scan.json`` in the report's folder: the whole report (its MLflow run id once logged)."""
    path = report.folder / "acsd_scan.json"
    path.write_text(json.dumps(report.to_dict(), indent=2))
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot(results: Sequence[SettingResult], choice: Choice, path: Path, x: str, line: str) -> Path:
    """ACSD against ``x`` with one line (error bars: bootstrap std) per value of ``line``."""
    plt = _pyplot()
    labels = {"rcut": "cutoff radius rcut (Å)", "twojmax": "band limit twojmax = 2 J_max"}
    fig, (ax, ax_mi) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    for value in sorted({getattr(r, line) for r in results}):
        rows = sorted((r for r in results if getattr(r, line) == value), key=lambda r: getattr(r, x))
        drawn = ax.errorbar([getattr(r, x) for r in rows], [r.acsd for r in rows], yerr=[r.std for r in rows],
                            marker="o", capsize=3, label=f"{line} {value:g}")
        ax_mi.plot([getattr(r, x) for r in rows], [r.mi for r in rows], marker="o",
                   color=drawn.lines[0].get_color(), label=f"{line} {value:g}")
    ax_mi.set_xlabel(labels[x])
    ax_mi.set_ylabel("mutual information I(B; LDOS) (nats)")
    ax_mi.set_title("mutual information (higher: descriptors tell more)")
    ax_mi.legend(fontsize=8)
    ax_mi.grid(alpha=0.3)
    ax.plot([getattr(choice, x)], [choice.acsd], marker="*", markersize=16, color="crimson",
            linestyle="none", label=f"chosen ({choice.rcut:.4g} Å, {choice.twojmax})")
    ax.set_xlabel(labels[x])
    ax.set_ylabel("ACSD (eq. 17)")
    ax.set_title(f"ACSD against {x} (lower: descriptors as similar as the LDOS)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_acsd_vs_rcut(results: Sequence[SettingResult], choice: Choice, path: str | Path) -> Path:
    """The paper's figure 7: ACSD against the cutoff radius, one line per twojmax."""
    return _plot(results, choice, Path(path), "rcut", "twojmax")


def plot_acsd_vs_twojmax(results: Sequence[SettingResult], choice: Choice, path: str | Path) -> Path:
    """The paper's figure 8: ACSD against twojmax, one line per cutoff radius."""
    return _plot(results, choice, Path(path), "twojmax", "rcut")


# --------------------------------------------------------------------------- MLflow


def _scan_params(report: ScanReport) -> dict[str, Any]:
    c = report.config
    return {
        "store": report.store, "store_hash": report.store_hash[:16], "snapshots": ",".join(report.snapshots),
        "rcut": ",".join(f"{r:g}" for r in c.rcut), "twojmax": ",".join(str(j) for j in c.twojmax),
        "n_points": c.n_points, "seed": c.seed, "mode": c.mode, "n_bootstrap": c.n_bootstrap,
        "tie_sigma": c.tie_sigma, "snap_options": json.dumps(c.snap_options, sort_keys=True),
        "config": c.model_dump_json(),
    }


def log_scan(report: ScanReport, files: dict[str, Path]) -> str | None:
    """One parent run (params, choice, artifacts) and a child run per setting; the parent's id."""
    from hpsearch.tracking.journal import RUN_MAP
    from hpsearch.tracking.tracker import StudyTracker, TrialRecord, default_tracking_uri

    uri = report.config.tracking.uri or default_tracking_uri()
    tracker = StudyTracker(uri, report.config.tracking.experiment, f"acsd {report.config.name}", report.folder)
    choice = report.choice
    tracker.start(params=_scan_params(report),
                  tags={"hpsearch.kind": "acsd-scan", "hpsearch.choice": choice_text(choice)})
    for r in report.results:
        tracker.log_trial(TrialRecord(
            trial_id=r.key, params={"rcut": r.rcut, "twojmax": r.twojmax, "n_components": r.n_components},
            status="completed", phase="acsd",
            extra_metrics={"acsd": r.acsd, "acsd_std": r.std, "mi_nats": r.mi, "seconds": r.seconds},
        ))
    for path in files.values():
        tracker.log_artifact(path)
    summary = {f"acsd_{r.key}": r.acsd for r in report.results}
    summary.update(chosen_rcut=choice.rcut, chosen_twojmax=choice.twojmax, chosen_acsd=choice.acsd,
                   chosen_acsd_std=choice.std, minimum_acsd=choice.minimum_acsd, scan_seconds=report.seconds)
    left = tracker.finish(summary)
    if left:
        logger.warning("%d MLflow operations are buffered in %s", left, tracker.folder)
    run_map = tracker.folder / RUN_MAP
    run_id = json.loads(run_map.read_text()).get(tracker.study_key) if run_map.exists() else None
    logger.info("logged ACSD scan %s to %s (run %s)", report.config.name, uri, run_id)
    return run_id
