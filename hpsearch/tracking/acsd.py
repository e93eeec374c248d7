"""The descriptor scan end to end: store -> sampled snapshots -> ACSD grid -> choice -> files, MLflow.

:func:`run_acsd_scan` is what ``hpsearch acsd FILE`` runs and what the API offers. It writes
``acsd_scan.json``, ``acsd_table.md`` and the paper's figures 7 and 8 as PNGs
(``acsd_vs_rcut.png``: one line per twojmax; ``acsd_vs_twojmax.png``: one line per rcut) into the
results folder, and logs one MLflow parent run (params, the choice, the PNGs) with a child run
per setting (params rcut/twojmax, metrics acsd/acsd_std), which the MLflow UI can compare.

Example::

    config = load_scan_config("experiments/acsd_scan.yaml")
    report = run_acsd_scan(config)
    print(report.choice.rcut, report.choice.twojmax)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hpsearch.descriptors.scan import (
    AcsdScanConfig,
    Choice,
    SampledSnapshot,
    SettingResult,
    choose_descriptors,
    parse_scan_config,
    run_scan,
    sample_snapshot,
)
from hpsearch.errors import ConfigError, DataError

__all__ = [
    "ScanReport",
    "choice_text",
    "load_sampled_snapshots",
    "load_scan_config",
    "log_scan",
    "markdown_table",
    "plot_acsd_vs_rcut",
    "plot_acsd_vs_twojmax",
    "resolve_store",
    "run_acsd_scan",
    "table_rows",
    "write_outputs",
]

logger = logging.getLogger(__name__)

TABLE_HEADER = ("rcut (Å)", "twojmax", "components", "ACSD", "± std", "time (s)", "")


@dataclass(frozen=True)
class ScanReport:
    """What a scan produced: settings in grid order, the choice, where files and the run went."""

    config: AcsdScanConfig
    store: str
    store_hash: str
    snapshots: tuple[str, ...]
    results: tuple[SettingResult, ...]
    choice: Choice
    seconds: float
    folder: Path
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "config": self.config.model_dump(mode="json"),
            "store": self.store,
            "store_hash": self.store_hash,
            "snapshots": list(self.snapshots),
            "results": [r.to_dict() for r in self.results],
            "choice": self.choice.to_dict(),
            "seconds": self.seconds,
            "mlflow_run_id": self.run_id,
        }


def load_scan_config(path: str | Path) -> AcsdScanConfig:
    """Read and validate a scan YAML file (ConfigError with the key and value on any problem)."""
    from hpsearch.config.yamlfile import read_yaml

    return parse_scan_config(read_yaml(path, "scan file"), source=str(path))


def resolve_store(store: str) -> Path:
    """A store path; "default" / "small" generate the embedded dataset on first use."""
    from hpsearch.data.generate import resolve_store as find_store

    return find_store(store)


def _select(names: list[str], wanted: int | tuple[str, ...] | None, path: Path) -> list[str]:
    if wanted is None:
        return names
    if isinstance(wanted, int):
        if wanted > len(names):
            raise ConfigError(f"snapshots: {wanted} requested but {path} holds {len(names)}: use <= {len(names)}")
        return names[:wanted]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise DataError(f"snapshots {unknown} are not in {path}; it holds {names}")
    return list(wanted)


def load_sampled_snapshots(
    store_path: str | Path, snapshots: int | tuple[str, ...] | None, n_points: int, seed: int
) -> tuple[list[SampledSnapshot], str]:
    """The selected snapshots of a store, sampled for the ACSD; and the store's content hash."""
    from hpsearch.data.store import open_store

    path = Path(store_path)
    with open_store(path) as store:
        sampled = []
        for name in _select(store.names, snapshots, path):
            _, ldos = store.read_arrays(name)
            meta = store.metadata(name)
            sampled.append(sample_snapshot(name, meta.to_atoms(), ldos, n_points, seed,
                                           meta.whole_grid_shape, meta.offset))
        return sampled, store.content_hash()


def run_acsd_scan(
    config: AcsdScanConfig,
    folder: str | Path | None = None,
    on_result: Callable[[SettingResult], None] | None = None,
    tracking: bool | None = None,
) -> ScanReport:
    """Run the scan of ``config``; write results into ``folder`` (default ``results/<name>``)."""
    out = Path(folder or config.output or Path("results") / config.name).expanduser().resolve()
    start = time.perf_counter()
    store = resolve_store(config.store)
    snapshots, store_hash = load_sampled_snapshots(store, config.snapshots, config.n_points, config.seed)
    logger.info("ACSD scan %s: %d settings over %d snapshots of %s", config.name, config.n_settings,
                len(snapshots), store)
    results = run_scan(snapshots, config.grid(), config.mode, config.seed, config.n_bootstrap,
                       config.parallel, config.num_cpus, on_result)
    report = ScanReport(
        config=config, store=str(store), store_hash=store_hash, snapshots=tuple(s.name for s in snapshots),
        results=tuple(results), choice=choose_descriptors(results, config.tie_sigma),
        seconds=time.perf_counter() - start, folder=out,
    )
    files = write_outputs(report)
    if config.tracking.enabled if tracking is None else tracking:
        report = replace(report, run_id=log_scan(report, files))
        (out / "acsd_scan.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report


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
                     f"{r.std:.5f}", f"{r.seconds:.2f}", ", ".join(mark)))
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
    files["json"].write_text(json.dumps(report.to_dict(), indent=2))
    table = markdown_table(report.results, report.choice)
    files["table"].write_text(f"# ACSD scan {report.config.name}\n\n{table}\n\n{choice_text(report.choice)}\n")
    return files


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot(results: Sequence[SettingResult], choice: Choice, path: Path, x: str, line: str) -> Path:
    """ACSD against ``x`` with one line (error bars: bootstrap std) per value of ``line``."""
    plt = _pyplot()
    labels = {"rcut": "cutoff radius rcut (Å)", "twojmax": "band limit twojmax = 2 J_max"}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for value in sorted({getattr(r, line) for r in results}):
        rows = sorted((r for r in results if getattr(r, line) == value), key=lambda r: getattr(r, x))
        ax.errorbar([getattr(r, x) for r in rows], [r.acsd for r in rows], yerr=[r.std for r in rows],
                    marker="o", capsize=3, label=f"{line} {value:g}")
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
            extra_metrics={"acsd": r.acsd, "acsd_std": r.std, "seconds": r.seconds},
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
