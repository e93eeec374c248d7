"""hpsearch: distributed, training-free hyperparameter search for LDOS surrogate networks.

Heavy parts (Ray, MLflow, LAMMPS) are imported lazily, so ``import hpsearch.physics`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from hpsearch._version import __version__
__all__ = ["Experiment", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Experiment":
        from hpsearch.api import Experiment

        return Experiment
    raise AttributeError(f"module 'hpsearch' has no attribute {name!r}")
