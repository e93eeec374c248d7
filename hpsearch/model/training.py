"""Training with early stopping: the loop every training-based trial runs.

The loop indexes a tensor by a seeded per-epoch permutation (no DataLoader, no per-sample Python),
scales each mini-batch on the fly, evaluates validation in large chunks under ``inference_mode``
and synchronises with the device once per epoch. A NaN or inf loss ends training with
``status="diverged"`` instead of raising, so one bad trial never kills a study.

Two levers make a trial cheaper (both None by default: every point, as before):
``points_per_epoch`` trains each epoch on a seeded random subsample (a new one per epoch, without
replacement), and ``validation_points`` measures the per-epoch validation loss (early stopping,
the learning-rate plateau, what a trial reports per epoch) on a fixed subsample; the result's
``best_val_loss`` is then recomputed on every validation point.

Example:
    >>> result = train(spec, TrainingSettings(max_epochs=50, patience=5), data)
    >>> result.status, result.best_val_loss, result.history[-1]
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hpsearch.errors import ConfigError, DataError
from hpsearch.model.sources import PointSource
from hpsearch.model.network import NetworkSpec, build_network
from hpsearch.model.scaling import Scalers, ScalingMode

__all__ = [
    "EpochCallback", "LoadedModel", "TrainingResult", "TrainingSettings",
    "chunked_loss", "load_model", "resolve_device", "train", "validation_loss",
]

log = logging.getLogger(__name__)

#: ``on_epoch(epoch, train_loss, val_loss)``; return True to stop training after this epoch.
EpochCallback = Callable[[int, float, float], "bool | None"]
Status = Literal["completed", "diverged", "failed"]
_EVAL_CHUNK = 1 << 16


class TrainingSettings(BaseModel):
    """Training hyperparameters of one trial (immutable).

    ``min_delta`` is relative (as in MALA): an epoch improves when
    ``val_loss < best_val_loss * (1 - min_delta)``. ``patience=None`` disables early stopping.
    ``lr_schedule``: ``plateau`` (multiply by ``lr_factor`` after ``lr_patience`` epochs without
    improvement), ``cosine`` (to 0 over ``max_epochs``) or ``exponential`` (``lr_factor`` per epoch).
    ``points_per_epoch``: training points per epoch, a new seeded subsample each epoch (None or at
    least every point: all, as without it); early stopping and schedulers still count epochs.
    ``validation_points``: the per-epoch validation loss on a fixed subsample of this many
    validation points, the same for every epoch and trial (None: all); ``best_val_loss`` of the
    result is on every validation point.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    optimizer: Literal["adam", "sgd"] = "adam"
    learning_rate: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=512, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.0, ge=0, lt=1, description="SGD only")
    patience: int | None = Field(default=10, ge=1)
    min_delta: float = Field(default=0.0, ge=0, lt=1)
    max_epochs: int = Field(default=100, ge=1)
    lr_schedule: Literal["plateau", "cosine", "exponential"] | None = None
    lr_factor: float = Field(default=0.1, gt=0, lt=1)
    lr_patience: int = Field(default=5, ge=0)
    descriptor_scaling: ScalingMode = "feature-standard"
    ldos_scaling: ScalingMode = "minmax"
    seed: int = 0
    points_per_epoch: int | None = Field(default=None, ge=1, description="None: every training point")
    validation_points: int | None = Field(default=None, ge=1, description="None: every validation point")

    @field_validator("points_per_epoch", "validation_points", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        if isinstance(value, (bool, str)) or (isinstance(value, (int, float)) and not value >= 1):
            raise ValueError(f"{value!r} is not a number of points: give a positive integer, or null for all points")
        return value


@dataclasses.dataclass
class TrainingResult:
    """Outcome of one training: the best model (weights of the best validation epoch) and its record."""

    model: torch.nn.Module
    scalers: Scalers
    history: list[dict[str, float]]
    status: Status
    reason: str | None
    epochs: int
    seconds: float
    spec: NetworkSpec
    settings: TrainingSettings
    best_epoch: int = 0
    #: validation loss of the kept weights on every validation point (also with ``validation_points``)
    best_val_loss: float = math.inf
    #: from the call of :func:`train` to the end of the first optimiser step
    first_batch_seconds: float = math.nan
    #: training points per second over the whole run (validation passes included)
    points_per_second: float = math.nan
    #: the best epoch's validation loss as measured per epoch (on the validation subsample when
    #: ``validation_points`` is set; else equal to ``best_val_loss``)
    best_epoch_val_loss: float = math.inf
    #: training points seen over all epochs
    points_trained: int = 0
    #: seconds in the epochs' optimiser steps, in the per-epoch validation passes, and in the
    #: final validation on every point (0 without ``validation_points``)
    loop_seconds: float = 0.0
    validation_seconds: float = 0.0
    final_validation_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the model: plain values and CPU tensors."""
        return {
            "format": 1,
            "spec": self.spec.model_dump_json(),
            "settings": self.settings.model_dump_json(),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "scalers": self.scalers.state_dict(),
        }

    def save_model(self, path: str | Path) -> Path:
        """Write model, scalers, spec and settings with ``torch.save`` (state dicts only)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state(), path)
        return path


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model read back by :func:`load_model`, on the CPU and in eval mode."""

    model: torch.nn.Sequential
    scalers: Scalers
    spec: NetworkSpec
    settings: TrainingSettings


def load_model(path: str | Path) -> LoadedModel:
    """Read a file written by :meth:`TrainingResult.save_model` (``weights_only=True``)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        spec = NetworkSpec.model_validate_json(state["spec"])
        settings = TrainingSettings.model_validate_json(state["settings"])
        model = build_network(spec)
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, OSError) as exc:
        raise DataError(f"cannot load a model from {path}: {exc}; was it written by save_model?") from exc
    model.eval()
    return LoadedModel(model, Scalers.from_state_dict(state["scalers"]), spec, settings)


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` if given, else CUDA when visible, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _make_optimizer(model: torch.nn.Module, s: TrainingSettings) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        # fused: one kernel for all parameters (CPU and CUDA); ~30 % less time per small-batch step
        return torch.optim.Adam(model.parameters(), lr=s.learning_rate, weight_decay=s.weight_decay, fused=True)
    return torch.optim.SGD(
        model.parameters(), lr=s.learning_rate, momentum=s.momentum, weight_decay=s.weight_decay
    )


def _make_scheduler(opt: torch.optim.Optimizer, s: TrainingSettings) -> Any:
    if s.lr_schedule == "plateau":
        # eps=0: torch's default ignores reductions smaller than 1e-8, i.e. every one below lr 1e-7
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=s.lr_factor, patience=s.lr_patience, eps=0.0)
    if s.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.max_epochs)
    if s.lr_schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=s.lr_factor)
    return None


class _Epochs:
    """One training run's mutable state: model, optimiser, RNG and the per-epoch steps."""

    def __init__(self, model: torch.nn.Module, s: TrainingSettings, data: PointSource, scalers: Scalers) -> None:
        self.model, self.s, self.data, self.scalers = model, s, data, scalers
        self.opt = _make_optimizer(model, s)
        self.scheduler = _make_scheduler(self.opt, s)
        self.gen = torch.Generator(device=data.device).manual_seed(s.seed)
        self.first_batch_at: float | None = None
        self.points_trained = 0
        self.loop_seconds = 0.0
        started = time.perf_counter()  # drawing (a streamed source: reading) the subsample counts as validation
        self.val_sample = data.validation_sample(s.validation_points) if s.validation_points is not None else None
        self.validation_seconds = time.perf_counter() - started

    def train_epoch(self) -> float:
        """One pass over this epoch's shuffled training points (all, or ``points_per_epoch``); the
        mean scaled MSE (one device sync)."""
        started = time.perf_counter()
        self.model.train()
        total = torch.zeros((), dtype=torch.float64, device=self.data.device)
        n_points = 0
        for xb, yb in self.data.train_batches(self.s.batch_size, self.gen, self.s.points_per_epoch):
            xb = self.scalers.transform_descriptors(xb)
            yb = self.scalers.transform_ldos(yb)
            self.opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            total += loss.detach() * xb.shape[0]
            n_points += int(xb.shape[0])
            if self.first_batch_at is None:
                float(loss.detach())  # synchronise once, to time the first step honestly
                self.first_batch_at = time.perf_counter()
        mean = float(total) / max(n_points, 1)
        self.points_trained += n_points
        self.loop_seconds += time.perf_counter() - started
        return mean

    def val_loss(self) -> float:
        """The per-epoch validation loss: on the fixed subsample when there is one, else on all points."""
        started = time.perf_counter()
        if self.val_sample is not None:
            value = validation_loss(self.model, self.scalers, *self.val_sample)
        else:
            value = self.full_val_loss()
        self.validation_seconds += time.perf_counter() - started
        return value

    def full_val_loss(self) -> float:
        return chunked_loss(self.model, self.scalers, self.data.validation_chunks(), self.data.n_val_points)

    def step_schedule(self, val: float) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val)
        else:
            self.scheduler.step()


def validation_loss(model: torch.nn.Module, scalers: Scalers, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean scaled MSE over all points, in chunks, without autograd, on the model's device (chunks
    of ``x`` and ``y`` held elsewhere are moved there)."""
    chunks = ((x[i : i + _EVAL_CHUNK], y[i : i + _EVAL_CHUNK]) for i in range(0, x.shape[0], _EVAL_CHUNK))
    return chunked_loss(model, scalers, chunks, int(x.shape[0]))


def chunked_loss(model: torch.nn.Module, scalers: Scalers, chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 n_points: int) -> float:
    """Mean scaled MSE over ``n_points`` points arriving as unscaled ``(x, y)`` chunks (moved to
    the model's device), summed in float64 without autograd."""
    model.eval()
    first = next(iter(model.parameters()), None)
    total: torch.Tensor | None = None
    n_energies = 0
    with torch.inference_mode():
        for xc, yc in chunks:
            dev = first.device if first is not None else xc.device
            pred = model(scalers.transform_descriptors(xc.to(dev)))
            diff = pred - scalers.transform_ldos(yc.to(dev))
            part = (diff.double() ** 2).sum()
            total = part if total is None else total + part
            n_energies = int(yc.shape[1])
    if total is None:
        raise DataError("no validation points to compute a loss on: give the split a validation snapshot")
    return float(total) / (n_points * n_energies)


class _Stopper:
    """Early stopping on the validation loss with patience and a relative minimum improvement.

    Patience counts epochs since the last improvement by more than ``min_delta`` (relative); the
    weights kept are those of the lowest validation loss, improved by any amount.
    """

    def __init__(self, patience: int | None, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.reference, self.stale = math.inf, 0
        self.best, self.best_epoch = math.inf, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val: float, model: torch.nn.Module) -> bool:
        """Record ``val``; True when patience is exhausted."""
        if val < self.best:
            self.best, self.best_epoch = val, epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if val < self.reference * (1.0 - self.min_delta):
            self.reference, self.stale = val, 0
            return False
        self.stale += 1
        return self.patience is not None and self.stale >= self.patience


def _run_epochs(loop: _Epochs, stopper: _Stopper, history: list[dict[str, float]],
                on_epoch: EpochCallback | None) -> tuple[Status, str]:
    s = loop.s
    for epoch in range(1, s.max_epochs + 1):
        train_loss = loop.train_epoch()
        val = loop.val_loss() if math.isfinite(train_loss) else math.nan
        lr = float(loop.opt.param_groups[0]["lr"])
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val, "learning_rate": lr})
        if not (math.isfinite(train_loss) and math.isfinite(val)):
            return "diverged", f"non-finite loss at epoch {epoch} (train {train_loss}, validation {val})"
        exhausted = stopper.update(epoch, val, loop.model)
        if on_epoch is not None and on_epoch(epoch, train_loss, val):
            return "completed", f"stopped by on_epoch at epoch {epoch}"
        if exhausted:
            return "completed", f"early stopping: no relative improvement > {s.min_delta} for {s.patience} epochs"
        loop.step_schedule(val)
    return "completed", f"reached max_epochs={s.max_epochs}"


def _check_compatible(spec: NetworkSpec, data: PointSource) -> None:
    if (spec.n_in, spec.n_out) != (data.n_features, data.n_energies):
        raise ConfigError(
            f"network maps {spec.n_in} -> {spec.n_out} but the data have {data.n_features} descriptor "
            f"features and {data.n_energies} LDOS energies: set n_in/n_out from the data"
        )


def train(
    spec: NetworkSpec, settings: TrainingSettings, data: PointSource,
    on_epoch: EpochCallback | None = None, device: torch.device | str | None = None,
) -> TrainingResult:
    """Train a network of ``spec`` on ``data``; the result holds the weights of the best epoch.

    ``data`` is any :class:`~hpsearch.model.sources.PointSource`: the split in memory
    (:class:`~hpsearch.model.data.TrainingData`) or streamed (:class:`~hpsearch.model.streaming.StreamedData`).

    ``on_epoch(epoch, train_loss, val_loss)`` is called after each finite epoch (losses are scaled
    MSE); returning True stops training. Divergence and out-of-memory end with a status, not an
    exception. The caller's global torch RNG state is left untouched.
    """
    t0 = time.perf_counter()
    _check_compatible(spec, data)
    dev = resolve_device(device)
    data = data.to(dev)  # no copy when the data are there already (a trial's cached shard data)
    scalers = data.scalers(settings.descriptor_scaling, settings.ldos_scaling)
    history: list[dict[str, float]] = []
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(settings.seed)  # dropout masks
        model = build_network(spec, seed=settings.seed).to(dev)
        loop, stopper = _Epochs(model, settings, data, scalers), _Stopper(settings.patience, settings.min_delta)
        try:
            status, reason = _run_epochs(loop, stopper, history, on_epoch)
        except torch.OutOfMemoryError as exc:
            status, reason = "failed", f"out of memory on {dev}: {exc}; lower batch_size or width"
    if stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
    model.eval()
    best_val, final_seconds = _final_validation(loop, stopper)
    seconds = time.perf_counter() - t0
    log.log(logging.WARNING if status != "completed" else logging.INFO, "training %s: %s", status, reason)
    return TrainingResult(
        model=model, scalers=scalers, history=history, status=status, reason=reason,
        epochs=len(history), seconds=seconds, spec=spec, settings=settings,
        best_epoch=stopper.best_epoch, best_val_loss=best_val,
        first_batch_seconds=(loop.first_batch_at - t0) if loop.first_batch_at else math.nan,
        points_per_second=loop.points_trained / seconds if seconds > 0 else math.nan,
        best_epoch_val_loss=stopper.best, points_trained=loop.points_trained, loop_seconds=loop.loop_seconds,
        validation_seconds=loop.validation_seconds, final_validation_seconds=final_seconds,
    )


def _final_validation(loop: _Epochs, stopper: _Stopper) -> tuple[float, float]:
    """(validation loss of the kept weights on every point, seconds): the per-epoch value when that
    was on every point already, else one pass over all validation points (the model is loaded)."""
    if loop.val_sample is None or stopper.best_state is None:
        return stopper.best, 0.0
    started = time.perf_counter()
    value = loop.full_val_loss()
    return value, time.perf_counter() - started
