"""The data a benchmark runs on: the experiment files' own store and split, or any store
(``--store``, e.g. a user's imported MALA/QE data or a GPAW store) with a given ``--split`` or a
default division of its snapshots (:func:`hpsearch.data.splits.default_split_counts`).

Every strategy's experiment gets the same store and split (as snapshot names, so the printed
split is exactly what ran), and the baselines and the null are computed on it like the rest.

Example:
    >>> data = benchmark_data(Path("be2.h5"), "4:2:4", config)
    >>> print(data.describe())
    >>> overrides = data.overrides()   # merged into every experiment
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpsearch.config.experiment import ExperimentConfig
    from hpsearch.data.splits import Split

__all__ = ["BenchmarkData", "benchmark_data"]

_SHOWN_NAMES = 6


@dataclasses.dataclass(frozen=True)
class BenchmarkData:
    """Store file (absolute path), the resolved split, how it was chosen, and whether it replaces
    the experiment files' data."""

    store: str
    split: Split
    chosen: str
    replaces_experiments: bool

    def overrides(self) -> dict[str, Any]:
        """What to merge into every experiment (nothing when the experiment files' data stays)."""
        if not self.replaces_experiments:
            return {}
        return {"dataset": {"store": self.store, "split": {**self.split.to_dict(), "seed": None}}}

    def describe(self) -> str:
        """One line: the store, each part's count and names (the first few), how the split was chosen."""
        parts = []
        for part in ("train", "validation", "test"):
            names = list(getattr(self.split, part))
            shown = ", ".join(names[:_SHOWN_NAMES]) + (", ..." if len(names) > _SHOWN_NAMES else "")
            parts.append(f"{len(names)} {part} ({shown})")
        return f"data: {self.store}; split {'; '.join(parts)}; chosen: {self.chosen}"

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "split": self.split.to_dict(), "chosen": self.chosen,
                "replaces_experiments": self.replaces_experiments}


def benchmark_data(store: Path | None, split: str | None, config: ExperimentConfig) -> BenchmarkData:
    """The benchmark's store and split: `store` (else the experiment's), split by `split`
    ("TRAIN:VALIDATION:TEST" counts or names), else by the default division of the given store's
    snapshots, else by the experiment's own split. ConfigError/DataError naming what is wrong."""
    from hpsearch.api import baseline_split
    from hpsearch.data import open_store
    from hpsearch.data.generate import resolve_store
    from hpsearch.data.splits import default_split_counts

    path = resolve_store(store if store is not None else config.dataset.store,
                         key="--store" if store is not None else "dataset.store")
    if split is not None:
        resolved, chosen = baseline_split(path, split), f"--split {split}"
    elif store is not None:
        with open_store(path) as opened:
            n_snapshots = len(opened.names)
        counts = default_split_counts(n_snapshots)
        resolved = baseline_split(path, ":".join(str(c) for c in counts))
        chosen = (f"default division {counts[0]}:{counts[1]}:{counts[2]} of its {n_snapshots} snapshots in store "
                  "order; choose with --split TRAIN:VALIDATION:TEST")
    else:
        resolved, chosen = baseline_split(path, config.dataset.split), "the experiment files' store and split"
    return BenchmarkData(str(path), resolved, chosen, replaces_experiments=store is not None or split is not None)
