"""The energy grid on which an LDOS is sampled, and the Boltzmann constant in eV/K."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.errors import DataError

__all__ = ["KB_EV_PER_K", "EnergyGrid"]

#: Boltzmann constant in eV/K (CODATA 2018, exact).
KB_EV_PER_K: float = 8.617333262e-5

_GRID_KEYS = ("offset_ev", "spacing_ev", "n")


@dataclass(frozen=True)
class EnergyGrid:
    """A uniform energy grid ``E_i = offset_ev + i * spacing_ev`` for ``i = 0 .. n - 1`` (eV).

    Example:
        >>> grid = EnergyGrid(offset_ev=-5.0, spacing_ev=2.5, n=11)
        >>> grid.energies[[0, -1]].tolist()
        [-5.0, 20.0]
        >>> EnergyGrid.from_dict(grid.to_dict()) == grid
        True
    """

    offset_ev: float
    spacing_ev: float
    n: int

    def __post_init__(self) -> None:
        # Only normalises and checks the three numbers (no work beyond that).
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise DataError(f"EnergyGrid.n must be an integer >= 1, got {self.n!r}")
        offset, spacing = float(self.offset_ev), float(self.spacing_ev)
        if not math.isfinite(offset):
            raise DataError(f"EnergyGrid.offset_ev must be finite, got {self.offset_ev!r}")
        if not (math.isfinite(spacing) and spacing > 0.0):
            raise DataError(
                f"EnergyGrid.spacing_ev must be a finite positive number, got {self.spacing_ev!r}"
            )
        object.__setattr__(self, "offset_ev", offset)
        object.__setattr__(self, "spacing_ev", spacing)
        object.__setattr__(self, "n", int(self.n))

    @property
    def energies(self) -> np.ndarray:
        """The grid energies in eV, float64, shape ``(n,)`` (a fresh array each call)."""
        return self.offset_ev + np.arange(self.n, dtype=np.float64) * self.spacing_ev

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"offset_ev": ..., "spacing_ev": ..., "n": ...}``."""
        return {"offset_ev": self.offset_ev, "spacing_ev": self.spacing_ev, "n": self.n}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnergyGrid:
        """Inverse of :meth:`to_dict`; missing or unknown keys are a :class:`DataError`."""
        if not isinstance(data, dict):
            raise DataError(f"an energy grid must be a dict with keys {_GRID_KEYS}, got {data!r}")
        missing = [k for k in _GRID_KEYS if k not in data]
        unknown = sorted(set(data) - set(_GRID_KEYS))
        if missing or unknown:
            raise DataError(
                f"energy grid dict {data!r}: missing keys {missing}, unknown keys {unknown}; "
                f"expected exactly {list(_GRID_KEYS)}"
            )
        return cls(offset_ev=data["offset_ev"], spacing_ev=data["spacing_ev"], n=data["n"])
