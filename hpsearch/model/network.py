"""The feed-forward LDOS network, built from hyperparameters.

One network maps the descriptors of one grid point to the LDOS vector of that point (paper eq. 9):
``n_in`` features -> hidden layers (``widths``, each followed by its activation and optional
dropout) -> a linear output layer of ``n_out`` energies.

Example:
    >>> spec = NetworkSpec(n_in=91, n_out=11, widths=(64, 64), activations="LeakyReLU")
    >>> net = build_network(spec, seed=0)
    >>> net(torch.zeros(5, 91)).shape
    torch.Size([5, 11])
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hpsearch.errors import ConfigError

__all__ = ["ACTIVATIONS", "NetworkSpec", "build_network", "count_parameters"]

#: Activation name (torch class name) -> torch module class; every elementwise activation torch has
#: that takes no required argument. Lookup in ``NetworkSpec`` is case-insensitive.
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    cls.__name__: cls
    for cls in (
        torch.nn.ReLU,
        torch.nn.LeakyReLU,
        torch.nn.Sigmoid,
        torch.nn.Tanh,
        torch.nn.ELU,
        torch.nn.SELU,
        torch.nn.CELU,
        torch.nn.GELU,
        torch.nn.SiLU,
        torch.nn.Mish,
        torch.nn.Softplus,
        torch.nn.Softsign,
        torch.nn.ReLU6,
        torch.nn.PReLU,
        torch.nn.RReLU,
        torch.nn.Hardtanh,
        torch.nn.Hardsigmoid,
        torch.nn.Hardswish,
        torch.nn.LogSigmoid,
        torch.nn.Tanhshrink,
        torch.nn.Identity,
    )
}
_BY_LOWER = {name.lower(): name for name in ACTIVATIONS}


def _canonical_activation(name: str) -> str:
    canonical = _BY_LOWER.get(str(name).lower())
    if canonical is None:
        raise ConfigError(
            f"unknown activation {name!r}: use one of {', '.join(sorted(ACTIVATIONS))} "
            "(case-insensitive)"
        )
    return canonical


class NetworkSpec(BaseModel):
    """Architecture hyperparameters of one feed-forward LDOS network (immutable).

    ``widths`` holds one width per hidden layer (empty: a linear model). ``activations`` is one
    name for every hidden layer or one name per hidden layer. ``dropout`` follows every hidden
    activation when > 0.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_in: int = Field(gt=0, description="input features per grid point (descriptor components)")
    n_out: int = Field(gt=0, description="LDOS energies per grid point")
    widths: tuple[int, ...] = Field(description="width of each hidden layer")
    activations: str | tuple[str, ...] = "ReLU"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @classmethod
    def uniform(
        cls, n_in: int, n_out: int, n_hidden: int, width: int, activation: str = "ReLU", **kw: Any
    ) -> NetworkSpec:
        """A spec with ``n_hidden`` hidden layers of the same ``width`` and activation."""
        if n_hidden < 0:
            raise ConfigError(f"n_hidden must be >= 0, got {n_hidden}")
        return cls(n_in=n_in, n_out=n_out, widths=(width,) * n_hidden, activations=activation, **kw)

    @field_validator("widths")
    @classmethod
    def _check_widths(cls, widths: tuple[int, ...]) -> tuple[int, ...]:
        bad = [w for w in widths if w <= 0]
        if bad:
            raise ConfigError(f"hidden widths must be positive, got {widths}")
        return widths

    @field_validator("activations")
    @classmethod
    def _check_activations(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if isinstance(value, str):
            return _canonical_activation(value)
        return tuple(_canonical_activation(v) for v in value)

    @model_validator(mode="after")
    def _check_lengths(self) -> NetworkSpec:
        if isinstance(self.activations, tuple) and len(self.activations) != len(self.widths):
            raise ConfigError(
                f"got {len(self.activations)} activations {self.activations} for "
                f"{len(self.widths)} hidden layers {self.widths}: give one per hidden layer "
                "or a single name for all"
            )
        return self

    @property
    def hidden_activations(self) -> tuple[str, ...]:
        """The activation of each hidden layer."""
        if isinstance(self.activations, str):
            return (self.activations,) * len(self.widths)
        return self.activations


def build_network(spec: NetworkSpec, seed: int | None = None) -> torch.nn.Sequential:
    """Build the network of ``spec`` on the CPU; ``seed`` fixes its initial weights.

    The seed is applied inside a forked RNG, so the caller's global torch RNG is not changed.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        layers: list[torch.nn.Module] = []
        n_prev = spec.n_in
        for width, name in zip(spec.widths, spec.hidden_activations, strict=True):
            layers.append(torch.nn.Linear(n_prev, width))
            layers.append(ACTIVATIONS[name]())
            if spec.dropout > 0:
                layers.append(torch.nn.Dropout(spec.dropout))
            n_prev = width
        layers.append(torch.nn.Linear(n_prev, spec.n_out))
        return torch.nn.Sequential(*layers)


def count_parameters(model: torch.nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
