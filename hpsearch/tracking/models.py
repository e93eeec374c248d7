"""Log a PyTorch model to an MLflow run without warnings a user cannot act on.

hpsearch saves its predictor (network + scalers, a custom ``nn.Module``) in MLflow's pickle
format on purpose: the safe "pt2" format needs an input example and cannot hold the scalers.
MLflow warns about pickle on every model, and about the ``+cpu`` label of CPU builds of torch
when it infers requirements; here the requirements are given (without the local label) and
the pickle notice is kept out of the user's console.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["log_pytorch_model", "model_requirements"]


def model_requirements() -> list[str]:
    """pip requirements of a pickled hpsearch model: torch (without ``+cpu``/``+cu121``) and cloudpickle."""
    import cloudpickle
    import torch

    return [f"torch=={torch.__version__.split('+', 1)[0]}", f"cloudpickle=={cloudpickle.__version__}"]


@contextlib.contextmanager
def _quiet(logger_name: str, level: int = logging.ERROR) -> Iterator[None]:
    log = logging.getLogger(logger_name)
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)


def log_pytorch_model(tracking_uri: str, run_id: str, model: Any, name: str = "model") -> None:
    """``mlflow.pytorch.log_model`` of ``model`` into the run ``run_id`` (pickle format), quietly."""
    import mlflow

    from hpsearch.tracking.tracker import using_tracking_uri

    with using_tracking_uri(tracking_uri), mlflow.start_run(run_id=run_id), _quiet("mlflow.pytorch"):
        mlflow.pytorch.log_model(model, name=name, serialization_format="pickle",
                                 pip_requirements=model_requirements())
