"""Scaling of descriptors and LDOS, fitted on the training snapshots only, stored with the model.

Descriptors are standardised per feature by default; the LDOS is min-max normalised over all
energies by default (MALA's ``"normal"``), which keeps its shape across energies. Statistics are
accumulated in float64 chunk by chunk (Chan's parallel update), so fitting never makes a float64
copy of the whole training set.

Example:
    >>> scalers = Scalers().fit(x_train, y_train)
    >>> y = scalers.inverse_ldos(model(scalers.transform_descriptors(x)))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

import numpy as np
import torch

from hpsearch.errors import ConfigError, DataError

__all__ = ["MOMENT_BLOCK_ROWS", "Moments", "ScalingMode", "Scalers", "feature_moments", "merge_moments", "streamed_moments",
           "streamed_pair_moments"]

ScalingMode = Literal["feature-standard", "standard", "minmax", "feature-minmax", "none"]
_MODES: tuple[str, ...] = get_args(ScalingMode)
#: rows per block of the moment accumulation (the unit of :func:`streamed_moments`)
MOMENT_BLOCK_ROWS = 1 << 16
_TINY = 1e-12


def _as_2d_tensor(values: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(values)
    return tensor.reshape(-1, tensor.shape[-1])


#: Per-feature statistics in float64: n (0-d), mean, m2 (sum of squared deviations), min, max.
Moments = dict[str, torch.Tensor]


def _merge(a: Moments, b: Moments) -> Moments:
    """Chan's parallel update of two sets of moments."""
    n_a, n_b = a["n"], b["n"]
    n = n_a + n_b
    delta = b["mean"] - a["mean"]
    return {
        "n": n,
        "mean": a["mean"] + delta * (n_b / n),
        "m2": a["m2"] + b["m2"] + delta**2 * (n_a * n_b / n),
        "min": torch.minimum(a["min"], b["min"]),
        "max": torch.maximum(a["max"], b["max"]),
    }


def merge_moments(parts: list[Moments]) -> Moments:
    """Moments of the union of the data sets the ``parts`` were computed on (e.g. shards)."""
    if not parts:
        raise DataError("no moments to merge: no training points were given")
    total = parts[0]
    for part in parts[1:]:
        total = _merge(total, part)
    return total


def _block_moments(chunk: torch.Tensor) -> Moments:
    chunk = chunk.to(torch.float64)
    mean_b = chunk.mean(dim=0)
    return {
        "n": torch.tensor(float(chunk.shape[0]), dtype=torch.float64, device=chunk.device),
        "mean": mean_b, "m2": ((chunk - mean_b) ** 2).sum(dim=0),
        "min": chunk.amin(dim=0), "max": chunk.amax(dim=0),
    }


def _checked(total: Moments) -> Moments:
    moments = {k: v.cpu() for k, v in total.items()}
    if not (torch.isfinite(moments["mean"]).all() and torch.isfinite(moments["m2"]).all()):
        raise DataError("training data contain NaN or inf values: clean or regenerate the store")
    return moments


def feature_moments(values: np.ndarray | torch.Tensor) -> Moments:
    """Per-feature count, mean, M2 (sum of squared deviations), min and max in float64 (CPU)."""
    data = _as_2d_tensor(values)
    if data.shape[0] == 0:
        raise DataError("cannot fit scalers on zero training points: check the training split")
    return streamed_moments(data[start : start + MOMENT_BLOCK_ROWS] for start in range(0, data.shape[0], MOMENT_BLOCK_ROWS))


def streamed_moments(blocks: Iterable[np.ndarray | torch.Tensor]) -> Moments:
    """:func:`feature_moments` of the rows of ``blocks`` concatenated, one block at a time; blocks
    of :data:`MOMENT_BLOCK_ROWS` rows give bit for bit the moments of the whole array."""
    total: Moments | None = None
    for block in blocks:
        part = _block_moments(_as_2d_tensor(block))
        total = part if total is None else _merge(total, part)
    if total is None:
        raise DataError("cannot fit scalers on zero training points: check the training split")
    return _checked(total)


def streamed_pair_moments(blocks: Iterable[tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]]) -> tuple[Moments, Moments]:
    """:func:`streamed_moments` of descriptors and LDOS arriving together as ``(x, y)`` blocks (one pass)."""
    totals: list[Moments | None] = [None, None]
    for pair in blocks:
        for i, block in enumerate(pair):
            part = _block_moments(_as_2d_tensor(block))
            before = totals[i]
            totals[i] = part if before is None else _merge(before, part)
    if totals[0] is None or totals[1] is None:
        raise DataError("cannot fit scalers on zero training points: check the training split")
    return _checked(totals[0]), _checked(totals[1])


def _shift_scale(mode: str, mom: Moments) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift, scale) so that scaled = (x - shift) / scale, per feature (broadcast for global)."""
    n_feat = mom["mean"].shape[0]
    ones = torch.ones(n_feat, dtype=torch.float64)
    if mode == "none":
        return torch.zeros(n_feat, dtype=torch.float64), ones
    if mode == "feature-standard":
        std = torch.sqrt(mom["m2"] / mom["n"])
        return mom["mean"], torch.where(std > _TINY, std, ones)
    if mode == "feature-minmax":
        span = mom["max"] - mom["min"]
        return mom["min"], torch.where(span > _TINY, span, ones)
    if mode == "standard":
        grand = mom["mean"].mean()
        # Pooled variance over every feature: within-feature M2 plus between-feature spread.
        var = (mom["m2"].sum() + mom["n"] * ((mom["mean"] - grand) ** 2).sum()) / (mom["n"] * n_feat)
        std = float(torch.sqrt(var))
        return ones * grand, ones * (std if std > _TINY else 1.0)
    lo, hi = float(mom["min"].min()), float(mom["max"].max())
    span = hi - lo
    return ones * lo, ones * (span if span > _TINY else 1.0)


class Scalers:
    """Descriptor and LDOS scaling: ``scaled = (value - shift) / scale`` per feature.

    ``descriptor_mode`` / ``ldos_mode``: ``feature-standard`` (per-feature mean 0, std 1),
    ``standard`` (one mean and std over all features), ``minmax`` (one min and range over all
    features), ``feature-minmax`` (per feature) or ``none``.
    """

    def __init__(
        self, descriptor_mode: ScalingMode = "feature-standard", ldos_mode: ScalingMode = "minmax"
    ) -> None:
        for label, mode in (("descriptor_mode", descriptor_mode), ("ldos_mode", ldos_mode)):
            if mode not in _MODES:
                raise ConfigError(f"{label}={mode!r} is not a scaling mode: use one of {_MODES}")
        self.descriptor_mode = descriptor_mode
        self.ldos_mode = ldos_mode
        self._params: dict[str, torch.Tensor] | None = None

    @property
    def is_fitted(self) -> bool:
        return self._params is not None

    def fit(self, descriptors: np.ndarray | torch.Tensor, ldos: np.ndarray | torch.Tensor) -> Scalers:
        """Fit on the training descriptors (..., n_features) and LDOS (..., n_energies)."""
        return self.fit_moments(feature_moments(descriptors), feature_moments(ldos))

    def fit_moments(self, descriptor_moments: Moments, ldos_moments: Moments) -> Scalers:
        """Fit from precomputed :func:`feature_moments` (e.g. merged over shards); no data pass."""
        x_shift, x_scale = _shift_scale(self.descriptor_mode, descriptor_moments)
        y_shift, y_scale = _shift_scale(self.ldos_mode, ldos_moments)
        self._params = {
            "x_shift": x_shift.float(), "x_scale": x_scale.float(),
            "y_shift": y_shift.float(), "y_scale": y_scale.float(),
        }
        return self

    def _get(self, name: str, like: torch.Tensor) -> torch.Tensor:
        if self._params is None:
            raise ConfigError("Scalers are not fitted: call fit(descriptors, ldos) first")
        value = self._params[name]
        if value.device != like.device or value.dtype != like.dtype:
            value = value.to(device=like.device, dtype=like.dtype)
            self._params[name] = value  # keep the moved copy: one transfer per device
        return value

    def transform_descriptors(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._get("x_shift", x)) / self._get("x_scale", x)

    def inverse_descriptors(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._get("x_scale", x) + self._get("x_shift", x)

    def transform_ldos(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self._get("y_shift", y)) / self._get("y_scale", y)

    def inverse_ldos(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._get("y_scale", y) + self._get("y_shift", y)

    def to(self, device: torch.device | str) -> Scalers:
        """Move the fitted parameters to ``device`` (in place); returns self."""
        if self._params is not None:
            self._params = {k: v.to(device) for k, v in self._params.items()}
        return self

    def state_dict(self) -> dict[str, object]:
        """Modes and fitted parameters (CPU tensors); loadable with ``torch.load(weights_only=True)``."""
        if self._params is None:
            raise ConfigError("Scalers are not fitted: nothing to save")
        state: dict[str, object] = {"descriptor_mode": self.descriptor_mode, "ldos_mode": self.ldos_mode}
        state.update({k: v.detach().cpu().clone() for k, v in self._params.items()})
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, object]) -> Scalers:
        """Rebuild fitted scalers from :meth:`state_dict`."""
        try:
            scalers = cls(str(state["descriptor_mode"]), str(state["ldos_mode"]))  # type: ignore[arg-type]
            params = {k: torch.as_tensor(state[k]).float() for k in ("x_shift", "x_scale", "y_shift", "y_scale")}
        except KeyError as exc:
            raise DataError(f"scaler state lacks {exc}: was it written by Scalers.state_dict()?") from exc
        scalers._params = params
        return scalers

    def __repr__(self) -> str:
        fitted = "fitted" if self.is_fitted else "unfitted"
        return f"Scalers(descriptor_mode={self.descriptor_mode!r}, ldos_mode={self.ldos_mode!r}, {fitted})"
