"""The ACSD descriptor scan of a snapshot store: sampled snapshots -> ACSD grid -> the paper's choice.

The computation behind ``hpsearch acsd FILE``: it reads the store, samples each snapshot once
(:func:`~hpsearch.descriptors.scan.sample_snapshot`), runs the scan
(:func:`~hpsearch.descriptors.scan.run_scan`, on Ray through :mod:`hpsearch.parallel` when
asked) and applies the choice rule. It writes nothing: :func:`hpsearch.api.run_acsd_scan` adds
the files, figures and the MLflow run (:mod:`hpsearch.tracking.acsd`).

Example::

    report = scan_store(config, Path("results/be2-acsd"))
    print(report.choice.rcut, report.choice.twojmax)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.descriptors.scan import (
    AcsdScanConfig,
    Choice,
    SampledSnapshot,
    SettingResult,
    choose_descriptors,
    run_scan,
    sample_snapshot,
)
from hpsearch.errors import ConfigError, DataError

__all__ = ["ScanReport", "load_sampled_snapshots", "scan_store"]

logger = logging.getLogger(__name__)


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


def scan_store(
    config: AcsdScanConfig, folder: Path, on_result: Callable[[SettingResult], None] | None = None
) -> ScanReport:
    """The scan of ``config`` over its store ("default" / "small": generated on first use)."""
    from hpsearch.data.generate import resolve_store

    start = time.perf_counter()
    store = resolve_store(config.store)
    snapshots, store_hash = load_sampled_snapshots(store, config.snapshots, config.n_points, config.seed)
    logger.info("ACSD scan %s: %d settings over %d snapshots of %s", config.name, config.n_settings,
                len(snapshots), store)
    results = run_scan(snapshots, config.grid(), config.mode, config.seed, config.n_bootstrap,
                       config.parallel, config.num_cpus, on_result)
    return ScanReport(
        config=config, store=str(store), store_hash=store_hash, snapshots=tuple(s.name for s in snapshots),
        results=tuple(results), choice=choose_descriptors(results, config.tie_sigma),
        seconds=time.perf_counter() - start, folder=folder,
    )
