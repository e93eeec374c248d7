"""The experiment definition: typed, validated, immutable; read from YAML or built in code.

Example YAML (every section but ``name`` and ``search_space`` is optional)::

    name: be2-tpe
    dataset: {store: data/be2.h5, split: {train: 2, validation: 1, test: 1}, memory_budget_gb: 8}
    search_space:
      n_layers: {type: int, low: 1, high: 3}
      width: [32, 64, 128]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    fixed: {activation: LeakyReLU, max_epochs: 30}
    # cheaper trials: 100000 random training points per epoch, per-epoch validation on 20000
    # fixed points (the trial's final validation errors stay on every point)
    # fixed: {max_epochs: 30, points_per_epoch: 100000, validation_points: 20000}
    strategy: {name: tpe, options: {n_startup_trials: 5}}
    scheduler: {name: naswot-pruner, options: {quantile: 0.5, warmup_trials: 5}}
    budget: {max_trials: 40, max_concurrent: 2}
    repeats: 1
    retrains: 5               # the winner, retrained with new seeds: the only models tested
    objective: ldos_mse       # validation LDOS loss selects (default; or band_energy)
    resources: {cpus: 1, gpus: 0}
    naswot: {batch_size: 64, n_init: 5}
    seed: 0
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hpsearch.config.registry import load_scheduler, load_strategy
from hpsearch.config.space import SearchSpace, parameter_kind
from hpsearch.config.strategy import OBJECTIVES, SchedulerPlugin, Strategy, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.errors import format_validation_error as _format_validation_error
from hpsearch.errors import validate_mapping

#: Values every hyperparameter takes when neither the trial nor ``fixed`` names it.
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "n_layers": 2,
    "width": 64,
    "activation": "ReLU",
    "dropout": 0.0,
    "learning_rate": 1e-3,
    "batch_size": 64,
    "patience": 5,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "min_delta": 0.0,
    "max_epochs": 50,
    "lr_schedule": None,
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Section):
    """Snapshots per part: counts (split in store order, or shuffled with `seed`) or explicit names."""

    train: int | tuple[str, ...] = 2
    validation: int | tuple[str, ...] = 1
    test: int | tuple[str, ...] = 1
    seed: int | None = None

    @model_validator(mode="after")
    def _same_form(self) -> SplitConfig:
        parts = (self.train, self.validation, self.test)
        if len({isinstance(p, int) for p in parts}) != 1:
            raise ValueError("give train, validation and test all as counts or all as lists of names")
        if isinstance(self.train, int) and min(parts) < 1:  # type: ignore[type-var]
            raise ValueError(f"each part needs at least one snapshot, got {parts}")
        return self

    @classmethod
    def parse(cls, text: str, option: str = "--split") -> SplitConfig:
        """``"TRAIN:VALIDATION:TEST"`` as counts in store order (``"4:2:4"``) or as comma-separated
        snapshot names per part (``"s0,s1:s2:s3"``; a names part may be empty); ConfigError otherwise."""
        parts = text.split(":")
        if len(parts) != 3:
            raise ConfigError(f"{option} {text!r} is not TRAIN:VALIDATION:TEST: give three counts like 4:2:4 "
                              "or three comma-separated name lists like s0,s1:s2:s3")
        if all(p.strip().isdigit() for p in parts):
            raw: dict[str, Any] = dict(zip(("train", "validation", "test"), (int(p) for p in parts)))
        else:
            raw = {k: tuple(n.strip() for n in p.split(",") if n.strip())
                   for k, p in zip(("train", "validation", "test"), parts)}
        return validate_mapping(cls, raw, option, "train, validation, test")  # type: ignore[no-any-return]


class DatasetConfig(_Section):
    """Where the snapshots come from: a store path, or "default" / "small" (generated on first use).

    A split whose arrays (float32, train + validation + test) exceed ``memory_budget_gb`` is
    streamed to the trials in chunks of ``chunk_points`` grid points (``prefetch_chunks`` read
    ahead) instead of being held in Ray's object store; None: half the object-store memory of the
    smallest node. The choice is logged when the study starts.

    ``keep_loaded``: the data actors stay after the study, so that the next study on the same
    store file and split (on a running cluster) starts without loading it again; a changed file
    gets new actors. ``hpsearch data release`` frees them.
    """

    store: str = "default"
    split: SplitConfig = SplitConfig()
    memory_budget_gb: float | None = Field(default=None, gt=0, description="None: automatic")
    chunk_points: int = Field(default=1 << 16, ge=1024, description="grid points per streamed chunk")
    prefetch_chunks: int = Field(default=2, ge=0, le=16, description="chunks read ahead while training")
    keep_loaded: bool = Field(default=False, description="keep the data actors for the next study on this data")


class PluginConfig(_Section):
    """A strategy or scheduler by registered name, with its own options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class BudgetConfig(_Section):
    max_trials: int | None = Field(default=None, ge=1)
    max_concurrent: int = Field(default=1, ge=1)
    time_budget_s: float | None = Field(default=None, gt=0)
    #: Tune-level retries of a trial whose worker crashed (a failing trial is recorded, not retried)
    max_failures: int = Field(default=0, ge=0)


class ResourcesConfig(_Section):
    """Per trial; fractional GPUs share a device (no memory isolation)."""

    cpus: float = Field(default=1.0, gt=0)
    gpus: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _whole_gpus_above_one(self) -> ResourcesConfig:
        if self.gpus > 1 and not float(self.gpus).is_integer():
            raise ValueError(f"gpus above 1 must be a whole number, got {self.gpus}")
        return self

    def as_tune(self) -> dict[str, float]:
        return {"cpu": self.cpus, "gpu": self.gpus}


class TrainingConfig(_Section):
    """Training settings that are not searched (``fixed`` holds the searchable ones)."""

    momentum: float = Field(default=0.0, ge=0, lt=1)
    lr_factor: float = Field(default=0.1, gt=0, lt=1)
    lr_patience: int = Field(default=5, ge=0)
    descriptor_scaling: str = "feature-standard"
    ldos_scaling: str = "minmax"
    device: str | None = Field(default=None, description="None: cuda when the trial has a GPU, else cpu")

    @field_validator("device")
    @classmethod
    def _device(cls, device: str | None) -> str | None:
        if device is not None and not re.match(r"^(cpu|cuda(:\d+)?|mps)$", device):
            raise ValueError(f"device {device!r} must be cpu, cuda, cuda:<index> or mps (or omitted)")
        return device


class NaswotConfig(_Section):
    """NASWOT scoring: batch of training points (<= number of descriptor features), T initialisations."""

    batch_size: int = Field(default=64, ge=2)
    n_init: int = Field(default=5, ge=1)
    k: float = Field(default=1e-4, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_convention(cls, data: Any) -> Any:
        if isinstance(data, dict) and "convention" in data:
            raise ValueError(
                "naswot.convention is not a setting: the sign of the NASWOT score is the proxy's name. Use "
                "strategy options `proxy: naswot-paper` (the paper's software: maximise S) or `proxy: naswot-v1` "
                "(-S, hpsearch's default), and the same under the naswot-pruner's options")
        return data


class TrackingConfig(_Section):
    """MLflow: on unless `enabled: false` (or, when unset, HPSEARCH_TRACKING=off in the environment).

    `uri` None means MLFLOW_TRACKING_URI, else a SQLite store in ``mlruns/`` beside the results.
    """

    enabled: bool | None = None

    @property
    def is_enabled(self) -> bool:
        import os

        if self.enabled is not None:
            return self.enabled
        return os.environ.get("HPSEARCH_TRACKING", "on").lower() not in ("0", "off", "false", "no")
    uri: str | None = None
    experiment: str | None = None


class ExperimentConfig(_Section):
    """One study: data, search space, strategy, budget and everything a trial needs."""

    name: str
    dataset: DatasetConfig = DatasetConfig()
    search_space: SearchSpace
    fixed: dict[str, Any] = Field(default_factory=dict)
    strategy: PluginConfig = PluginConfig(name="tpe")
    scheduler: PluginConfig | None = None
    budget: BudgetConfig = BudgetConfig()
    repeats: int = Field(default=1, ge=1, description="trainings per trial, averaged")
    retrains: int = Field(
        default=0, ge=0, le=1000, description="after the search, train the winner this often with new seeds (paper: 5); "
        "only these retrains are evaluated on the test snapshots"
    )
    objective: Literal["band_energy", "ldos_mse"] = Field(
        default="ldos_mse", description="what selects: the validation LDOS loss (scaled MSE, the default: low "
        "noise, what MALA optimises) or the mean validation band-energy error (meV/atom), which one seed's "
        "total-DOS bias dominates; both are reported"
    )
    resources: ResourcesConfig = ResourcesConfig()
    training: TrainingConfig = TrainingConfig()
    naswot: NaswotConfig = NaswotConfig()
    seed: int = 0
    tracking: TrackingConfig = TrackingConfig()
    storage_path: Path | None = Field(default=None, description="results folder; default ./results/<name>")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"name {name!r} must be letters, digits, '_', '.', '-' (it names a folder)")
        return name

    @field_validator("fixed")
    @classmethod
    def _fixed_names(cls, fixed: dict[str, Any]) -> dict[str, Any]:
        for name in fixed:
            parameter_kind(name)  # ConfigError (a ValueError) naming the known ones
        return fixed

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, plugin: PluginConfig) -> PluginConfig:
        _validated_options(load_strategy(plugin.name), plugin)
        return plugin

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, plugin: PluginConfig | None) -> PluginConfig | None:
        if plugin is not None:
            _validated_options(load_scheduler(plugin.name), plugin)
        return plugin

    # -- derived --------------------------------------------------------------------------------
    @property
    def results_dir(self) -> Path:
        """The study's folder (absolute): config, Tune state, trial table and result."""
        return (self.storage_path or Path("results") / self.name).expanduser().resolve()

    def hyperparameter_defaults(self) -> dict[str, Any]:
        """Values for every hyperparameter a trial does not name: built-in defaults, then `fixed`."""
        return {**DEFAULT_HYPERPARAMETERS, **self.fixed}

    def context(self) -> StrategyContext:
        return StrategyContext(
            seed=self.seed,
            fixed=self.hyperparameter_defaults(),
            max_trials=self.budget.max_trials,
            max_concurrent=self.budget.max_concurrent,
            metric=OBJECTIVES[self.objective],
        )

    def make_strategy(self) -> Strategy:
        cls = load_strategy(self.strategy.name)
        return cls(self.search_space, _validated_options(cls, self.strategy), self.context())

    def make_scheduler(self) -> SchedulerPlugin | None:
        if self.scheduler is None:
            return None
        cls = load_scheduler(self.scheduler.name)
        return cls(_validated_options(cls, self.scheduler), self.context())


def _validated_options(cls: type[Strategy] | type[SchedulerPlugin], plugin: PluginConfig) -> Any:
    try:
        return cls.Options.model_validate(plugin.options)
    except ValidationError as exc:
        raise ConfigError(
            f"options of {plugin.name!r}: {format_validation_error(exc, prefix='options')}"
        ) from None


_MESSAGES = {("too_short", "search_space"): "the search space is empty: name at least one hyperparameter to search"}


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: the dotted path of the key, what is wrong, the value, and a hint."""
    return _format_validation_error(exc, prefix, _MESSAGES)


def parse_experiment(raw: Any, source: str = "experiment") -> ExperimentConfig:
    """Validate a mapping (e.g. loaded YAML) as an ExperimentConfig; ConfigError on any problem."""
    return validate_mapping(ExperimentConfig, raw, source, "of sections: name, search_space, ...", _MESSAGES)


def renamed(config: ExperimentConfig, name: str) -> ExperimentConfig:
    """The same experiment under another name (and, without a storage_path, another folder)."""
    return parse_experiment({**config.model_dump(), "name": name}, source="--name")


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file."""
    from hpsearch.config.yamlfile import read_yaml

    return parse_experiment(read_yaml(path, "experiment file"), source=str(path))


def check_finite_numbers(config: ExperimentConfig) -> None:
    """Reject NaN/inf in fixed values (YAML's .nan / .inf) before anything starts."""
    for name, value in config.fixed.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"fixed.{name} is {value}: give a finite number")


# -- from hyperparameters to the model's objects (used by validation and by every trial) ----------
#: ``points_per_epoch`` and ``validation_points`` (the training's cost levers) are not in
#: DEFAULT_HYPERPARAMETERS: unset, a trial trains and validates on every point.
_TRAINING_KEYS = ("optimizer", "learning_rate", "batch_size", "weight_decay", "patience", "min_delta",
                  "max_epochs", "lr_schedule", "points_per_epoch", "validation_points")


def network_spec(params: dict[str, Any], n_in: int, n_out: int) -> Any:
    """The NetworkSpec of a full set of hyperparameters (``width_<i>``/``activation_<i>`` per layer)."""
    from hpsearch.model import NetworkSpec

    n_layers = int(params["n_layers"])
    widths = tuple(int(params.get(f"width_{i}", params["width"])) for i in range(1, n_layers + 1))
    activations = tuple(str(params.get(f"activation_{i}", params["activation"])) for i in range(1, n_layers + 1))
    single = len(set(activations)) <= 1
    return NetworkSpec(
        n_in=n_in,
        n_out=n_out,
        widths=widths,
        activations=activations[0] if single and activations else (activations or str(params["activation"])),
        dropout=float(params.get("dropout", 0.0)),
    )


def training_settings(params: dict[str, Any], training: TrainingConfig, seed: int) -> Any:
    """The TrainingSettings of a full set of hyperparameters, the fixed training options and a seed."""
    from hpsearch.model import TrainingSettings

    values = {k: params[k] for k in _TRAINING_KEYS if k in params}
    extra = training.model_dump(exclude={"device"})
    return TrainingSettings(**values, **extra, seed=seed)


def _probe_values(space: SearchSpace, name: str) -> list[Any]:
    parameter = space.parameters[name]
    if parameter.is_discrete:
        return list(space.levels(name))
    return [parameter.low, parameter.high]  # type: ignore[union-attr]


def check_hyperparameters(config: ExperimentConfig) -> None:
    """Every searched value and every default builds a valid network and training setup."""
    defaults = config.hyperparameter_defaults()
    probes: list[tuple[str, dict[str, Any]]] = [("fixed", defaults)]
    for name in config.search_space.names:
        for value in _probe_values(config.search_space, name):
            probes.append((f"search_space.{name}={value!r}", {**defaults, name: value}))
    for where, params in probes:
        try:
            params = {**params, "n_layers": max(int(params["n_layers"]), 1)}
            network_spec(params, 1, 1)
            training_settings(params, config.training, config.seed)
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            text = format_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"{where}: not a valid hyperparameter value: {text}") from None


def validate_experiment(config: ExperimentConfig) -> tuple[Strategy, SchedulerPlugin | None]:
    """Everything that can be checked before anything starts; returns the strategy and scheduler."""
    check_finite_numbers(config)
    check_hyperparameters(config)
    strategy = config.make_strategy()
    strategy.validate()
    scheduler = config.make_scheduler()
    if scheduler is not None:
        scheduler.validate()
    return strategy, scheduler
