"""The LDOS surrogate network: architecture, scaling, training with early stopping, evaluation.

Example:
    >>> from hpsearch.model import NetworkSpec, TrainingSettings, TrainingData, train, evaluate
    >>> data = TrainingData.from_store(store_path, split)
    >>> spec = NetworkSpec(n_in=data.n_features, n_out=data.n_energies, widths=(100, 100))
    >>> result = train(spec, TrainingSettings(max_epochs=100, patience=8), data)
    >>> evaluate(result.model, result.scalers, data.test).mean_band_energy_error_mev_per_atom
"""

from __future__ import annotations

from hpsearch.model.baselines import BaselineReport, store_baselines
from hpsearch.model.data import TestSnapshot, TrainingData
from hpsearch.model.evaluation import Evaluation, RetrainResult, evaluate, retrain
from hpsearch.model.network import ACTIVATIONS, NetworkSpec, build_network, count_parameters
from hpsearch.model.scaling import Scalers, ScalingMode, feature_moments, merge_moments
from hpsearch.model.sources import PointSource
from hpsearch.model.streaming import StreamedData
from hpsearch.model.training import (
    EpochCallback,
    LoadedModel,
    TrainingResult,
    TrainingSettings,
    load_model,
    resolve_device,
    train,
    validation_loss,
)

__all__ = [
    "ACTIVATIONS",
    "BaselineReport",
    "EpochCallback",
    "Evaluation",
    "LoadedModel",
    "NetworkSpec",
    "PointSource",
    "RetrainResult",
    "Scalers",
    "ScalingMode",
    "StreamedData",
    "TestSnapshot",
    "TrainingData",
    "TrainingResult",
    "TrainingSettings",
    "build_network",
    "count_parameters",
    "evaluate",
    "feature_moments",
    "load_model",
    "merge_moments",
    "resolve_device",
    "retrain",
    "store_baselines",
    "train",
    "validation_loss",
]
