"""Which training-free score ranks trained networks on this data? The proxy calibration study.

Sample N architectures (seeded) from a small space, or take every depth x width x activation of it
(``architectures: all``), score each with every proxy over T initialisations on one batch of
training points, train each with early stopping until its validation loss stops improving, and
measure its error on the VALIDATION snapshots: the LDOS RMSE (the loss MALA optimises; what every
proxy is judged on) and the mean band-energy error (meV/atom; the second column). The test
snapshots are not loaded at all. Then, per proxy and per rank-average ensemble,
:func:`hpsearch.scoring.calibration.calibrate`: Kendall tau with its bootstrap CI, the rank of the
proxy's top-1 among all trained architectures, the best rank in its top 5, the regret of its top-1.
``params`` (the size baseline every proxy must beat) and both NASWOT signs (``naswot``, the
paper's; ``naswot-v1``) are always scored.

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
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hpsearch.errors import ConfigError, validate_mapping
from hpsearch.scoring._study_training import train_architectures, validation_snapshots
from hpsearch.scoring.calibration import ProxyCalibration, beats, calibrate, ensemble_name, rank_average
from hpsearch.scoring.experiment import ArchitectureSpace, sample_architectures
from hpsearch.scoring.proxies import PROXIES
from hpsearch.scoring.proxies.many import score_architectures_proxies

if TYPE_CHECKING:
    from hpsearch.data.splits import Split
    from hpsearch.model import NetworkSpec, TrainingData, TrainingSettings

__all__ = ["ALWAYS_SCORED", "DEFAULT_ENSEMBLES", "ArchitectureRow", "ProxyStudy", "ProxyStudyConfig",
           "load_proxy_study_config", "run_proxy_study", "validation_split"]

log = logging.getLogger(__name__)

#: Ensembles fixed before any data was seen (choosing members by their tau on the same study
#: would overstate the ensemble): the proxies from different families, and NASWOT with size.
DEFAULT_ENSEMBLES: tuple[tuple[str, ...], ...] = (
    ("naswot", "synflow", "zico", "meco", "near"), ("naswot", "params"), ("zico", "synflow"),
)
#: Scored in every study whatever ``proxies`` says: the size baseline, and both NASWOT signs side by side.
ALWAYS_SCORED: tuple[str, ...] = ("params", "naswot", "naswot-v1")
#: What every proxy is judged on, and the second column.
ERROR = "validation LDOS RMSE"
SECOND_ERROR = "validation band-energy error (meV/atom)"


class ProxyStudyConfig(BaseModel):
    """Everything a proxy study needs (the YAML file's keys; unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field("default", description="store path, or 'default'/'small' (generated)")
    architectures: Literal["sample", "all"] = Field(
        "sample", description="sample n_architectures (a width per layer), or all: every depth x width x "
                              "activation with one width for all layers, trained exhaustively")
    n_architectures: int = Field(48, ge=3, description="with architectures: sample")
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
    lr_schedule: Literal["plateau"] | None = Field(
        None, description="plateau: learning rate x 0.3 after 4 epochs without improvement (trainings converge "
                          "instead of stopping on a noisy plateau); None: constant")
    n_validation: int | None = Field(None, ge=1, description="default: 3/8 of the snapshots")
    n_train: int | None = Field(None, ge=1, description="default: every snapshot that does not validate")
    n_test: int | None = Field(None, ge=0, description="split as a search does: the first n_train train, the "
                               "next n_validation validate, the next n_test are held out (never loaded)")
    workers: int = Field(1, ge=1, description="processes that train architectures in parallel (1 thread each)")
    report_test: bool = Field(False, description="after the calibration, evaluate each trained network once on the "
                              "held-out test part and report tau against the test errors too (a calibration "
                              "report; never set by a search's pilot, which must not read test snapshots)")
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

    @model_validator(mode="after")
    def _one_way_to_choose(self) -> ProxyStudyConfig:
        if self.architectures == "all" and "n_architectures" in self.model_fields_set:
            raise ConfigError(f"n_architectures={self.n_architectures} with architectures: all: the exhaustive "
                              "study trains every depth x width x activation; drop one of the two keys")
        return self

    def space(self) -> ArchitectureSpace:
        return ArchitectureSpace(depths=self.depths, widths=self.widths, activations=self.activations)

    def size(self) -> int:
        """Architectures the study trains."""
        if self.architectures == "all":
            return len(self.depths) * len(self.widths) * len(self.activations)
        return self.n_architectures

    def tracking_enabled(self) -> bool:
        import os

        if self.tracking is not None:
            return self.tracking
        return os.environ.get("HPSEARCH_TRACKING", "on").lower() not in ("0", "off", "false", "no")

    def proxy_names(self) -> list[str]:
        """The proxies scored: ``proxies`` (default every registered one) and :data:`ALWAYS_SCORED`."""
        names = list(self.proxies) if self.proxies is not None else list(PROXIES)
        have = {PROXIES.canonical(n) for n in names}
        return list(dict.fromkeys([*names, *(n for n in ALWAYS_SCORED if n not in have)]))

    def settings(self) -> TrainingSettings:
        from hpsearch.model import TrainingSettings

        schedule = {"lr_schedule": "plateau", "lr_factor": 0.3, "lr_patience": 4} if self.lr_schedule else {}
        return TrainingSettings(max_epochs=self.max_epochs, patience=self.patience, learning_rate=self.learning_rate,
                                batch_size=self.train_batch_size, seed=self.seed, **schedule)


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
    #: the LDOS RMSE on each validation snapshot and their mean (the LDOS's units): the judged error
    val_ldos_rmse: float = math.nan
    val_ldos_rmses: tuple[float, ...] = ()
    #: with ``report_test`` only: the same errors on the held-out test part (read after training)
    test_ldos_rmse: float = math.nan
    test_error_mev_per_atom: float = math.nan


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
    #: snapshots of the store held out as the test part (never loaded, unless ``report_test``)
    held_out: tuple[str, ...] = ()
    #: with ``report_test``: every proxy judged on the test LDOS RMSE (second error: test band energy)
    test_calibration: tuple[ProxyCalibration, ...] = ()

    def best(self, k: int = 1) -> list[ProxyCalibration]:
        """The k proxies or ensembles with the most negative tau (higher score, lower error)."""
        ranked = sorted((c for c in self.calibration if math.isfinite(c.tau)), key=lambda c: c.tau)
        return ranked[:k]

    def params_tau(self) -> float:
        """Kendall tau of the ``params`` baseline (NaN when it is undefined)."""
        return next((c.tau for c in self.calibration if c.name == "params"), math.nan)

    def beats_params(self, row: ProxyCalibration) -> bool:
        """True when ``row`` ranks the trained networks better than ``params`` (a more negative tau)."""
        return beats(row.tau, self.params_tau())

    def n_capped(self) -> int:
        """Trainings that stopped at max_epochs (still improving: the study may be too short)."""
        return sum(r.epochs >= self.config.max_epochs for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.model_dump(mode="json"), "store": self.store, "split": self.split,
                "held_out": list(self.held_out), "error": ERROR, "second_error": SECOND_ERROR,
                "rows": [dataclasses.asdict(r) for r in self.rows],
                "calibration": [{**c.to_dict(), "beats_params": self.beats_params(c)} for c in self.calibration],
                "test_calibration": [c.to_dict() for c in self.test_calibration],
                "scoring_seconds": self.scoring_seconds, "training_seconds": self.training_seconds,
                "n_capped": self.n_capped()}


def validation_split(names: list[str], n_validation: int | None, n_train: int | None = None,
                     n_test: int | None = None) -> Split:
    """Training and validation snapshots only (no test part): the last 3/8 validate unless given,
    the ``n_train`` (default: all the others) before them train. With ``n_test``, as a search's
    ``dataset.split`` counts: the first ``n_train`` train, the next ``n_validation`` validate, and
    the ``n_test`` after them are the held-out test part, left out here."""
    from hpsearch.data.splits import Split, split_snapshots

    if n_test is not None:
        n_val = n_validation if n_validation is not None else 1
        n_fit = n_train if n_train is not None else len(names) - n_val - n_test
        if n_fit < 1 or n_fit + n_val + n_test > len(names):
            raise ConfigError(f"n_train={n_fit}, n_validation={n_val} and n_test={n_test} do not fit the "
                              f"{len(names)} snapshots of the store")
        full = split_snapshots(names, n_fit, n_val, n_test)
        return Split(train=full.train, validation=full.validation, test=())
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
    with open_store(store_path) as store:
        names = list(store.names)
    if split is None:
        split = validation_split(names, config.n_validation, config.n_train, config.n_test)
    used = {*split.train, *split.validation}
    held_out = tuple(n for n in names if n not in used)
    data = TrainingData.from_store(store_path, split)
    val = validation_snapshots(store_path, tuple(split.validation))
    space = config.space()
    if config.architectures == "all":
        specs = space.grid(data.n_features, data.n_energies)
    else:
        specs = sample_architectures(space, data.n_features, data.n_energies, config.n_architectures, config.seed)
    settings = config.settings()
    log.info("proxy study: %d architectures (%s), trained on %s, validated on %s (%s; held out, %s: %s); "
             "training: at most %d epochs, patience %d, learning rate %g, mini-batch %d", len(specs),
             "every depth x width x activation" if config.architectures == "all" else "sampled",
             list(split.train), list(split.validation), ERROR,
             "read once after training (report_test)" if config.report_test else "never loaded",
             list(held_out) or "none", config.max_epochs, config.patience, config.learning_rate,
             config.train_batch_size)
    x, y = proxy_batch(data, settings, config.batch_size, config.seed)
    seconds: dict[str, float] = {}
    scores = score_architectures_proxies(
        specs, x, y, config.proxy_names(), config.n_init, config.seed, seconds,
        progress=(lambda d, t: progress("scoring", d, t)) if progress else None)
    t0 = time.perf_counter()
    tested = held_out if config.report_test else ()
    if config.report_test and not tested:
        raise ConfigError("report_test needs held-out test snapshots: give the split a test part (e.g. --split 2:1:1)")
    trained = train_architectures(specs, config, store_path, split, data, val, progress, test_names=tested)
    rows = [ArchitectureRow(label=_label(spec), widths=tuple(spec.widths), activation=spec.hidden_activations[0],
                            scores=score.scores, reasons=score.reasons, **row)
            for spec, score, row in zip(specs, scores, trained, strict=True)]
    test_calibration = calibrate_rows(rows, config, part="test") if tested else ()
    study = ProxyStudy(config=config, store=str(store_path), split=split.to_dict(), rows=tuple(rows),
                       calibration=calibrate_rows(rows, config), scoring_seconds=seconds,
                       training_seconds=time.perf_counter() - t0, held_out=held_out,
                       test_calibration=test_calibration)
    return study


def calibrate_rows(rows: list[ArchitectureRow], config: ProxyStudyConfig,
                   part: str = "validation") -> tuple[ProxyCalibration, ...]:
    """Calibration of every proxy and ensemble against the LDOS RMSE of ``part`` ("validation", or
    "test" with ``report_test``; the band-energy error as the second error) over the rows whose
    training gave a finite LDOS RMSE."""
    prefix = "val" if part == "validation" else "test"
    good = [r for r in rows if math.isfinite(getattr(r, f"{prefix}_ldos_rmse"))]
    if len(good) < 3:
        raise ConfigError(f"only {len(good)} of {len(rows)} architectures trained to a finite {part} "
                          "LDOS RMSE: the study needs at least 3 (check the training settings)")
    errors = [getattr(r, f"{prefix}_ldos_rmse") for r in good]
    band = [getattr(r, f"{prefix}_error_mev_per_atom") for r in good]
    activations = [r.activation for r in good]
    n_params = [r.n_params for r in good]
    names = config.proxy_names()
    table = {name: [r.scores[name] for r in good] for name in names}
    judge = functools.partial(calibrate, errors=errors, activations=activations, n_params=n_params,
                              seed=config.seed, n_bootstrap=config.n_bootstrap, second_errors=band)
    out = [judge(name, table[name], n_degenerate=sum(name in r.reasons for r in good)) for name in names]
    for members in config.ensembles:
        if all(m in table for m in members):
            out.append(judge(ensemble_name(members), rank_average(table, members)))
    return tuple(out)
