"""A trained network and its scalers as one module: raw descriptors in, LDOS out.

This is what is logged to MLflow (``mlflow.pytorch``), so a loaded model predicts without any
separate scaling step::

    predictor = mlflow.pytorch.load_model(model_uri)
    ldos = predictor(torch.as_tensor(descriptors.reshape(-1, n_features)))
"""

from __future__ import annotations

import torch

from hpsearch.model.network import NetworkSpec
from hpsearch.model.scaling import Scalers


class LdosPredictor(torch.nn.Module):
    """Scale descriptors, run the network, undo the LDOS scaling.

    Example::

        predictor = LdosPredictor(result.model, result.scalers, result.spec)
        ldos = predictor(descriptors)      # (points, n_features) -> (points, n_energies)
    """

    def __init__(self, network: torch.nn.Module, scalers: Scalers, spec: NetworkSpec) -> None:
        super().__init__()
        self.network = network
        self.scalers = scalers
        self.spec_json = spec.model_dump_json()

    def forward(self, descriptors: torch.Tensor) -> torch.Tensor:
        x = descriptors.to(next(self.network.parameters()).dtype)
        self.scalers = self.scalers.to(x.device)
        return self.scalers.inverse_ldos(self.network(self.scalers.transform_descriptors(x)))

    @property
    def spec(self) -> NetworkSpec:
        return NetworkSpec.model_validate_json(self.spec_json)
