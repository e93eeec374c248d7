"""The figure-5 experiment end to end: sample architectures, score them, train them, compare.

Sample K architectures from a small discrete space, score each with the NASWOT mean score on a
batch of scaled training descriptors (scaled exactly as training scales them), train each with a
small budget, evaluate its band-energy error on the validation snapshots, and hand the pairs to
:func:`naswot_error_study`. Writes a CSV table, a JSON summary and the PNG scatter plot.

Example:
    >>> space = ArchitectureSpace(depths=(1, 2), widths=(16, 64), activations=("ReLU", "Tanh"))
    >>> study = run_naswot_study("be2.h5", "results/naswot_study", space=space, n_architectures=12)
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpsearch.errors import ConfigError
from hpsearch.scoring.batched import score_architectures
from hpsearch.scoring.study import NaswotErrorStudy, naswot_error_study, score_conventions

if TYPE_CHECKING:
    from hpsearch.data.splits import Split
    from hpsearch.model import NetworkSpec, TrainingData, TrainingSettings
    from hpsearch.model.sources import PointSource

__all__ = ["ArchitectureSpace", "naswot_batch", "run_naswot_study", "sample_architectures"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ArchitectureSpace:
    """Discrete architectures: a depth, an independent width per hidden layer, one activation."""

    depths: tuple[int, ...] = (1, 2, 3)
    widths: tuple[int, ...] = (16, 32, 64, 128)
    activations: tuple[str, ...] = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh")
    dropout: float = 0.0

    def size(self) -> int:
        return sum(len(self.widths) ** d for d in self.depths) * len(self.activations)

    def grid(self, n_in: int, n_out: int) -> list[NetworkSpec]:
        """Every depth x width x activation with the same width in each hidden layer (the NASWOT
        strategies' ``n_layers`` x ``width`` x ``activation`` spaces), depth slowest, activation fastest."""
        from hpsearch.model import NetworkSpec

        return [NetworkSpec.uniform(n_in, n_out, depth, width, activation, dropout=self.dropout)
                for depth in self.depths for width in self.widths for activation in self.activations]

    def enumerate(self, n_in: int, n_out: int) -> list[NetworkSpec]:
        """Every architecture of the space, in a fixed order."""
        from hpsearch.model import NetworkSpec

        return [
            NetworkSpec(n_in=n_in, n_out=n_out, widths=widths, activations=activation, dropout=self.dropout)
            for depth in self.depths
            for widths in itertools.product(self.widths, repeat=depth)
            for activation in self.activations
        ]


def sample_architectures(
    space: ArchitectureSpace, n_in: int, n_out: int, n: int, seed: int = 0
) -> list[NetworkSpec]:
    """``n`` distinct architectures drawn uniformly (reproducibly) from ``space``."""
    size = space.size()
    if not 1 <= n <= size:
        raise ConfigError(f"cannot sample {n} distinct architectures from a space of {size}: use 1..{size}")
    if size > 1_000_000:
        raise ConfigError(f"the architecture space holds {size} networks: use fewer depths or widths")
    everything = space.enumerate(n_in, n_out)
    rows = np.random.default_rng(seed).choice(size, size=n, replace=False)
    return [everything[int(i)] for i in rows]


def naswot_batch(data: PointSource, settings: TrainingSettings, batch_size: int, seed: int) -> Any:
    """``batch_size`` random training points, scaled as training scales them (float64)."""
    import torch

    n_points = data.n_train_points
    if batch_size > n_points:
        raise ConfigError(f"batch_size={batch_size} exceeds the {n_points} training points")
    rows = np.sort(np.random.default_rng(seed).choice(n_points, size=batch_size, replace=False))
    scalers = data.scalers(settings.descriptor_scaling, settings.ldos_scaling)
    return scalers.transform_descriptors(data.train_rows(torch.from_numpy(rows)).double())


def _spec_label(spec: NetworkSpec) -> str:
    return f"{'x'.join(map(str, spec.widths))} {spec.hidden_activations[0]}"


def _train_error(spec: NetworkSpec, settings: TrainingSettings, data: TrainingData) -> dict[str, Any]:
    from hpsearch.model import evaluate, train

    result = train(spec, settings, data)
    row: dict[str, Any] = {"train_status": result.status, "epochs": result.epochs,
                           "train_seconds": round(result.seconds, 3), "error_mev_per_atom": math.nan}
    if result.ok:
        # validation snapshots: a study that informs a choice never reads the test set
        row["error_mev_per_atom"] = evaluate(result.model, result.scalers,
                                             data.validation_snapshots).mean_band_energy_error_mev_per_atom
    return row


def run_naswot_study(
    store_path: str | Path, out_dir: str | Path, *, space: ArchitectureSpace | None = None,
    n_architectures: int = 24, n_init: int = 5, batch_size: int = 64, seed: int = 0,
    settings: TrainingSettings | None = None, split: Split | None = None,
) -> NaswotErrorStudy:
    """Figure 5 on one store: K sampled architectures scored and trained; writes CSV/JSON/PNG."""
    from hpsearch.data.splits import split_snapshots
    from hpsearch.data.store import open_store
    from hpsearch.model import TrainingData, TrainingSettings

    space = space or ArchitectureSpace()
    settings = settings or TrainingSettings(max_epochs=20, patience=5)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if split is None:
        with open_store(store_path) as store:
            names = store.names
        n_val, n_test = (1, 1) if len(names) < 6 else (max(1, len(names) // 5),) * 2
        split = split_snapshots(names, len(names) - n_val - n_test, n_val, n_test)
    data = TrainingData.from_store(store_path, split)
    specs = sample_architectures(space, data.n_features, data.n_energies, n_architectures, seed)
    t0 = time.perf_counter()
    batch = naswot_batch(data, settings, batch_size, seed)
    scores = score_architectures(specs, batch, n_init=n_init, seed=seed)
    scoring_seconds = time.perf_counter() - t0
    rows = []
    for i, (spec, score) in enumerate(zip(specs, scores)):
        log.info("training architecture %d/%d: %s", i + 1, len(specs), _spec_label(spec))
        rows.append({"label": _spec_label(spec), "widths": list(spec.widths),
                     "activation": spec.hidden_activations[0], "naswot_reason": score.reason,
                     "init_scores_paper": list(score.scores), **_train_error(spec, settings, data)})
    trials = [(score, row["error_mev_per_atom"]) for score, row in zip(scores, rows)]
    study = naswot_error_study(trials, out / "naswot_error.png", labels=[r["label"] for r in rows],
                               title=f"NASWOT vs trained band-energy error, {Path(store_path).name}")
    _write_outputs(out, rows, scores, study, {
        "store": str(store_path), "split": split.to_dict(), "space": dataclasses.asdict(space),
        "settings": json.loads(settings.model_dump_json()), "n_architectures": n_architectures,
        "n_init": n_init, "batch_size": batch_size, "seed": seed,
        "scoring_seconds": scoring_seconds, "training_seconds": sum(r["train_seconds"] for r in rows),
    })
    return study


def _write_outputs(out: Path, rows: Sequence[dict[str, Any]], scores: Sequence[Any],
                   study: NaswotErrorStudy, meta: dict[str, Any]) -> None:
    with open(out / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "score_paper", "score_v1", "error_mev_per_atom", "init_scores_paper",
                         "naswot_reason", "train_status", "epochs", "train_seconds"])
        for row, score in zip(rows, scores):
            both = score_conventions(score) or (math.nan, math.nan)
            writer.writerow([row["label"], repr(both[0]), repr(both[1]), repr(row["error_mev_per_atom"]),
                             ";".join(map(repr, row["init_scores_paper"])), row["naswot_reason"] or "",
                             row["train_status"], row["epochs"], row["train_seconds"]])
    summary = {**meta, **study.to_dict(), "summary": study.summary()}
    (out / "naswot_study.json").write_text(json.dumps(summary, indent=2, default=str))
    log.info("wrote %s, %s and %s", out / "trials.csv", out / "naswot_study.json", study.figure_path)
