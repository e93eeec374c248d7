"""Which training-free score ranks trained networks on this data? The proxy calibration study.

Sample N architectures (seeded) from a small space, score each with every proxy over T
initialisations on one batch of training points, train each with early stopping until its
validation loss stops improving, and measure its error: the mean band-energy error over the
VALIDATION snapshots (meV/atom). The test snapshots are not loaded at all. Then, per proxy and
per rank-average ensemble, :func:`hpsearch.scoring.calibration.calibrate`.

Training default (``max_epochs=200, patience=10``, Adam 1e-3, mini-batch 512): stop after 10
epochs without a lower validation loss, keep the best epoch's weights; 200 is a cap that a
network only reaches while still improving, and the study reports how many did. Short training
hides the signal (on real Al data NASWOT's tau fell from -0.29 to -0.08 at 40 epochs).

Example:
    >>> config = ProxyStudyConfig(store="small", n_architectures=8, max_epochs=20)
    >>> study = run_proxy_study(config)
    >>> write_study(study, "results/proxy_study")  # hpsearch.scoring.proxy_report
    >>> study.best().name, study.best().tau
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hpsearch.errors import ConfigError, validate_mapping
from hpsearch.scoring._study_training import train_architectures, validation_snapshots
from hpsearch.scoring.calibration import ProxyCalibration, calibrate, ensemble_name, rank_average
from hpsearch.scoring.experiment import ArchitectureSpace, sample_architectures
from hpsearch.scoring.proxies import PROXIES
from hpsearch.scoring.proxies.many import score_architectures_proxies

if TYPE_CHECKING:
    from hpsearch.data.splits import Split
    from hpsearch.model import NetworkSpec, TrainingData, TrainingSettings

__all__ = ["DEFAULT_ENSEMBLES", "ArchitectureRow", "ProxyStudy", "ProxyStudyConfig", "load_proxy_study_config",
           "run_proxy_study", "validation_split"]

log = logging.getLogger(__name__)

#: Ensembles fixed before any data was seen (choosing members by their tau on the same study
#: would overstate the ensemble): the proxies from different families, and NASWOT with size.
DEFAULT_ENSEMBLES: tuple[tuple[str, ...], ...] = (
    ("naswot", "synflow", "zico", "meco", "near"), ("naswot", "params"), ("zico", "synflow"),
)


class ProxyStudyConfig(BaseModel):
    """Everything a proxy study needs (the YAML file's keys; unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field("default", description="store path, or 'default'/'small' (generated)")
    n_architectures: int = Field(48, ge=3)
    n_init: int = Field(5, ge=1, description="initialisations per architecture")
    batch_size: int = Field(64, ge=2, description="proxy batch: at most the number of features (NASWOT)")
    seed: int = Field(0, ge=0)
    depths: tuple[int, ...] = (1, 2, 3)
    widths: tuple[int, ...] = (16, 32, 64, 128)
    activations: tuple[str, ...] = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh")
    proxies: tuple[str, ...] | None = Field(None, description="default: every registered proxy")
    ensembles: tuple[tuple[str, ...], ...] = DEFAULT_ENSEMBLES
    max_epochs: int = Field(200, ge=1)
    patience: int = Field(10, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    train_batch_size: int = Field(512, ge=1)
    n_validation: int | None = Field(None, ge=1, description="default: 3/8 of the snapshots")
    n_train: int | None = Field(None, ge=1, description="default: every snapshot that does not validate")
    workers: int = Field(1, ge=1, description="processes that train architectures in parallel (1 thread each)")
    n_bootstrap: int = Field(1000, ge=10)
    tracking: bool | None = Field(None, description="MLflow; unset: on unless HPSEARCH_TRACKING=off")
    tracking_uri: str | None = None
    experiment: str = "proxy-study"

    @field_validator("proxies")
    @classmethod
    def _known(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in names or ():
            PROXIES[name]  # ConfigError naming the choices
        return names

    @field_validator("ensembles")
    @classmethod
    def _members(cls, ensembles: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        for members in ensembles:
            if len(members) < 2:
                raise ConfigError(f"ensemble {list(members)} needs at least 2 proxies")
            for name in members:
                PROXIES[name]
        return ensembles

    def tracking_enabled(self) -> bool:
        import os

        if self.tracking is not None:
            return self.tracking
        return os.environ.get("HPSEARCH_TRACKING", "on").lower() not in ("0", "off", "false", "no")

    def proxy_names(self) -> list[str]:
        return list(self.proxies) if self.proxies is not None else list(PROXIES)

    def settings(self) -> TrainingSettings:
        from hpsearch.model import TrainingSettings

        return TrainingSettings(max_epochs=self.max_epochs, patience=self.patience,
                                learning_rate=self.learning_rate, batch_size=self.train_batch_size, seed=self.seed)


def load_proxy_study_config(path: str | Path) -> ProxyStudyConfig:
    """A :class:`ProxyStudyConfig` from a YAML file; ConfigError with every problem and its key."""
    import yaml

    raw = yaml.safe_load(Path(path).read_text())
    return validate_mapping(ProxyStudyConfig, raw, str(path), "store, n_architectures, proxies, ...")


@dataclasses.dataclass(frozen=True)
class ArchitectureRow:
    """One sampled architecture: its proxy scores and its trained validation error."""

    label: str
    widths: tuple[int, ...]
    activation: str
    n_params: int
    scores: dict[str, float]
    reasons: dict[str, str]
    val_error_mev_per_atom: float
    val_errors_mev_per_atom: tuple[float, ...]
    train_status: str
    epochs: int
    best_epoch: int
    train_seconds: float


@dataclasses.dataclass(frozen=True)
class ProxyStudy:
    """The study's rows, the calibration of every proxy and ensemble, and what it cost."""

    config: ProxyStudyConfig
    store: str
    split: dict[str, Any]
    rows: tuple[ArchitectureRow, ...]
    calibration: tuple[ProxyCalibration, ...]
    scoring_seconds: dict[str, float]
    training_seconds: float

    def best(self, k: int = 1) -> list[ProxyCalibration]:
        """The k proxies or ensembles with the most negative tau (higher score, lower error)."""
        ranked = sorted((c for c in self.calibration if math.isfinite(c.tau)), key=lambda c: c.tau)
        return ranked[:k]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.model_dump(mode="json"), "store": self.store, "split": self.split,
                "rows": [dataclasses.asdict(r) for r in self.rows],
                "calibration": [c.to_dict() for c in self.calibration],
                "scoring_seconds": self.scoring_seconds, "training_seconds": self.training_seconds}


def validation_split(names: list[str], n_validation: int | None, n_train: int | None = None) -> Split:
    """Training and validation snapshots only (no test part): the last 3/8 validate unless given,
    the ``n_train`` (default: all the others) before them train."""
    from hpsearch.data.splits import split_snapshots

    n_val = n_validation if n_validation is not None else max(1, (3 * len(names) + 4) // 8)
    if n_val >= len(names):
        raise ConfigError(f"n_validation={n_val} leaves no training snapshot among {len(names)}: use fewer")
    n_fit = len(names) - n_val if n_train is None else n_train
    if n_fit + n_val > len(names):
        raise ConfigError(f"n_train={n_fit} + n_validation={n_val} exceed the {len(names)} snapshots of the store")
    names = names[len(names) - n_val - n_fit:]
    return split_snapshots(names, n_fit, n_val, 0)


def proxy_batch(data: TrainingData, settings: TrainingSettings, batch_size: int, seed: int) -> tuple[Any, Any]:
    """``batch_size`` random training points: (descriptors, LDOS), scaled as training scales them."""
    import torch

    n_points = data.x_train.shape[0]
    if batch_size > n_points:
        raise ConfigError(f"batch_size={batch_size} exceeds the {n_points} training points")
    rows = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(n_points, size=batch_size, replace=False)))
    scalers = data.scalers(settings.descriptor_scaling, settings.ldos_scaling)
    return (scalers.transform_descriptors(data.x_train[rows].double()),
            scalers.transform_ldos(data.y_train[rows].double()))


def _label(spec: NetworkSpec) -> str:
    return f"{'x'.join(map(str, spec.widths))} {spec.hidden_activations[0]}"


def run_proxy_study(config: ProxyStudyConfig,
                    progress: Callable[[str, int, int], None] | None = None, split: Split | None = None) -> ProxyStudy:
    """Run the study of ``config``: sample, score, train, calibrate (no files; see
    :func:`hpsearch.scoring.proxy_report.write_study`). ``progress(stage, done, total)``; ``split``:
    the training and validation snapshots to use (e.g. a search's; it may hold no test snapshot),
    instead of :func:`validation_split` of the whole store."""
    from hpsearch.data.generate import resolve_store
    from hpsearch.data.store import open_store
    from hpsearch.model import TrainingData

    store_path = resolve_store(config.store)
    if split is not None and split.test:
        raise ConfigError(f"a proxy study never reads test snapshots, but its split holds {list(split.test)}: "
                          "pass the training and validation snapshots only")
    if split is None:
        with open_store(store_path) as store:
            split = validation_split(list(store.names), config.n_validation, config.n_train)
    data = TrainingData.from_store(store_path, split)
    val = validation_snapshots(store_path, tuple(split.validation))
    space = ArchitectureSpace(depths=config.depths, widths=config.widths, activations=config.activations)
    specs = sample_architectures(space, data.n_features, data.n_energies, config.n_architectures, config.seed)
    settings = config.settings()
    x, y = proxy_batch(data, settings, config.batch_size, config.seed)
    seconds: dict[str, float] = {}
    scores = score_architectures_proxies(
        specs, x, y, config.proxy_names(), config.n_init, config.seed, seconds,
        progress=(lambda d, t: progress("scoring", d, t)) if progress else None)
    t0 = time.perf_counter()
    trained = train_architectures(specs, config, store_path, split, data, val, progress)
    rows = [ArchitectureRow(label=_label(spec), widths=tuple(spec.widths), activation=spec.hidden_activations[0],
                            scores=score.scores, reasons=score.reasons, **row)
            for spec, score, row in zip(specs, scores, trained, strict=True)]
    study = ProxyStudy(config=config, store=str(store_path), split=split.to_dict(), rows=tuple(rows),
                       calibration=calibrate_rows(rows, config), scoring_seconds=seconds,
                       training_seconds=time.perf_counter() - t0)
    return study


def calibrate_rows(rows: list[ArchitectureRow], config: ProxyStudyConfig) -> tuple[ProxyCalibration, ...]:
    """Calibration of every proxy and ensemble over the rows whose training gave a finite error."""
    good = [r for r in rows if math.isfinite(r.val_error_mev_per_atom)]
    if len(good) < 3:
        raise ConfigError(f"only {len(good)} of {len(rows)} architectures trained to a finite validation "
                          "error: the study needs at least 3 (check the training settings)")
    errors = [r.val_error_mev_per_atom for r in good]
    activations = [r.activation for r in good]
    n_params = [r.n_params for r in good]
    names = config.proxy_names()
    table = {name: [r.scores[name] for r in good] for name in names}
    out = [calibrate(name, table[name], errors, activations, n_params, seed=config.seed,
                     n_degenerate=sum(name in r.reasons for r in good), n_bootstrap=config.n_bootstrap)
           for name in names]
    for members in config.ensembles:
        if all(m in table for m in members):
            out.append(calibrate(ensemble_name(members), rank_average(table, members), errors, activations, n_params,
                                 seed=config.seed, n_bootstrap=config.n_bootstrap))
    return tuple(out)
