"""The Python API: define an experiment (YAML or code), validate it, run it, resume it.

Example::

    import hpsearch

    experiment = hpsearch.Experiment.from_yaml("experiments/be2_tpe.yaml")
    result = experiment.run()                      # local Ray, or .run(address="auto")
    print(result.best_config, result.best_val_error_mev_per_atom)   # selected on validation
    print(result.test_error_mev_per_atom)                            # the retrained winner, tested once
    print(result.trials[["trial_id", "status", "val_error_mev_per_atom"]])

    # built in code
    experiment = hpsearch.Experiment.from_dict({
        "name": "tiny", "dataset": {"store": "small"},
        "search_space": {"width": [16, 32], "n_layers": [1, 2]},
        "strategy": {"name": "grid"}, "fixed": {"max_epochs": 5},
    })
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from hpsearch.config.experiment import (
    ExperimentConfig,
    SplitConfig,
    load_experiment,
    parse_experiment,
    renamed,
    validate_experiment,
)
from hpsearch.tune.results import StudyResult

if TYPE_CHECKING:
    from ray.tune import Callback

    from hpsearch.data.descriptor_scan import ScanReport
    from hpsearch.data.splits import Split
    from hpsearch.descriptors.scan import AcsdScanConfig, SettingResult
    from hpsearch.model.baselines import BaselineReport

__all__ = ["Experiment", "ExperimentConfig", "StudyResult", "acsd_scan", "baselines", "load_scan_config",
           "proxy_study", "run_acsd_scan"]

logger = logging.getLogger(__name__)

#: what `split` of :func:`baselines` accepts
SplitLike = Union["Split", SplitConfig, Mapping[str, Any], str, Sequence[int], None]


class Experiment:
    """One hyperparameter study: its validated config, and how to run, resume or show it."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @classmethod
    def from_yaml(cls, path: str | Path) -> Experiment:
        """Read an experiment file; ConfigError (with the offending key) if anything is wrong."""
        return cls(load_experiment(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        """Build from a mapping shaped like the YAML file."""
        return cls(parse_experiment(dict(data), source="experiment"))

    def with_name(self, name: str) -> Experiment:
        """The same experiment under another name (and, by default, another results folder)."""
        return Experiment(renamed(self.config, name))

    def validate(self) -> Experiment:
        """Check everything that can be checked before starting (strategy and scheduler too)."""
        validate_experiment(self.config)
        return self

    def run(
        self, address: str | None = None, name: str | None = None, callbacks: Sequence[Callback] = (),
        tags: Mapping[str, str] | None = None,
    ) -> StudyResult:
        """Run the study to the end (local Ray unless `address`); saved in ``config.results_dir``.
        `tags` go on the study's MLflow run (e.g. ``{"strategy": "tpe + asha"}``)."""
        from hpsearch.tune.runner import run_study

        experiment = self.with_name(name) if name else self
        return run_study(experiment.config, address=address, callbacks=callbacks, tags=tags)

    @staticmethod
    def resume(name: str, results_root: str | Path = "results", address: str | None = None) -> StudyResult:
        """Go on with an interrupted study found by name under `results_root`."""
        from hpsearch.tune.runner import resume_study

        return resume_study(name, results_root=results_root, address=address)

    @staticmethod
    def load_result(name: str, results_root: str | Path = "results") -> StudyResult:
        """The saved result of a study (trial table included), without Ray."""
        from hpsearch.tune.runner import find_study

        return StudyResult.load(find_study(name, results_root))

    def __repr__(self) -> str:
        c = self.config
        return f"Experiment(name={c.name!r}, strategy={c.strategy.name!r}, parameters={c.search_space.names})"


def load_scan_config(path: str | Path) -> AcsdScanConfig:
    """Read and validate a scan YAML file (ConfigError with the key and value on any problem)."""
    from hpsearch.config.yamlfile import read_yaml
    from hpsearch.descriptors.scan import parse_scan_config

    return parse_scan_config(read_yaml(path, "scan file"), source=str(path))


def run_acsd_scan(
    config: AcsdScanConfig, folder: str | Path | None = None,
    on_result: Callable[[SettingResult], None] | None = None, tracking: bool | None = None,
) -> ScanReport:
    """Run the scan of ``config``; write results into ``folder`` (default ``results/<name>``) and,
    unless tracking is off, log it to MLflow (``tracking``: None follows the config)."""
    from hpsearch.data.descriptor_scan import scan_store
    from hpsearch.tracking.acsd import log_scan, write_outputs, write_report_json

    out = Path(folder or config.output or Path("results") / config.name).expanduser().resolve()
    report = scan_store(config, out, on_result)
    files = write_outputs(report)
    if config.tracking.enabled if tracking is None else tracking:
        report = dataclasses.replace(report, run_id=log_scan(report, files))
        write_report_json(report)
    return report


def acsd_scan(path: str | Path, folder: str | Path | None = None, tracking: bool | None = None) -> ScanReport:
    """Run the ACSD descriptor search of a scan file (see experiments/acsd_scan.yaml).

    Returns the scan report: ACSD per (rcut, twojmax), the chosen setting, the figures' paths.
    """
    return run_acsd_scan(load_scan_config(path), folder=folder, tracking=tracking)


def proxy_study(config: Any = None, out_dir: str | Path = "results/proxy_study", **overrides: Any) -> Any:
    """Run the proxy calibration study (see :mod:`hpsearch.scoring.proxy_study`).

    ``config``: a ``ProxyStudyConfig``, a YAML path, a mapping, or None (the defaults);
    ``overrides`` replace single keys (``store="small"``, ``n_architectures=12``). Writes the table,
    CSV, JSON and figure to ``out_dir`` and logs to MLflow unless tracking is off. Returns the
    ``ProxyStudy`` (``study.calibration``: Kendall tau, CIs, regret per proxy and ensemble).
    """
    from hpsearch.errors import validate_mapping
    from hpsearch.scoring.proxy_report import write_study
    from hpsearch.scoring.proxy_study import ProxyStudyConfig, load_proxy_study_config, run_proxy_study

    if config is None:
        config = ProxyStudyConfig()
    elif isinstance(config, (str, Path)):
        config = load_proxy_study_config(config)
    elif isinstance(config, Mapping):
        config = validate_mapping(ProxyStudyConfig, dict(config), "proxy study", "store, n_architectures, ...")
    if overrides:
        # only the keys set: architectures: all refuses an n_architectures someone gave
        config = validate_mapping(ProxyStudyConfig, {**config.model_dump(exclude_unset=True), **overrides},
                                  "proxy study", "store, n_architectures, ...")
    study = run_proxy_study(config)
    files = write_study(study, out_dir)
    if config.tracking_enabled():
        from hpsearch.tracking.proxy_study import log_proxy_study

        log_proxy_study(study, out_dir, files)
    return study


def baselines(
    store: str | Path = "default", split: SplitLike = None, *, ridge_lambda: float | None = None,
    descriptor_scaling: str = "feature-standard", ldos_scaling: str = "minmax",
) -> BaselineReport:
    """Ridge regression and the constant training-mean LDOS on a store's split: the bar a network
    must clear before architectures can be told apart (test LDOS RMSE, band-energy errors).

    ``store``: a store path, or "default" / "small" (generated on first use). ``split``: a Split,
    a SplitConfig or its mapping, ``"4:2:4"`` (counts in store order) or ``"s0,s1:s2:s3"``
    (names), three counts, or None for a default division of the store's snapshots (about 40 %
    test, 20 % validation, the rest trains). Example::

        report = hpsearch.api.baselines("small", split="2:1:1")
        print(report.markdown()); report.ldos_rmse("ridge", "test")
    """
    from hpsearch.data.generate import resolve_store
    from hpsearch.model.baselines import DEFAULT_RIDGE_LAMBDA, store_baselines

    path = resolve_store(store, key="store")
    chosen = baseline_split(path, split)
    lam = DEFAULT_RIDGE_LAMBDA if ridge_lambda is None else ridge_lambda
    return store_baselines(path, chosen, ridge_lambda=lam, descriptor_mode=descriptor_scaling,  # type: ignore[arg-type]
                           ldos_mode=ldos_scaling)  # type: ignore[arg-type]


def baseline_split(store_path: Path, split: SplitLike) -> Split:
    """The Split of ``split`` (see :func:`baselines`) on the store at ``store_path``."""
    from hpsearch.data import Split, open_store
    from hpsearch.data.splits import default_split_counts
    from hpsearch.errors import ConfigError, validate_mapping
    from hpsearch.tune.runner import split_of

    if isinstance(split, Split):
        return split
    if split is None:
        with open_store(store_path) as opened:
            counts = default_split_counts(len(opened.names))
        logger.info("no split given: %d train, %d validation, %d test snapshots in store order", *counts)
        spec = SplitConfig(train=counts[0], validation=counts[1], test=counts[2])
    elif isinstance(split, SplitConfig):
        spec = split
    elif isinstance(split, str):
        spec = SplitConfig.parse(split, "split")
    elif isinstance(split, Mapping):
        spec = validate_mapping(SplitConfig, dict(split), "split", "train, validation, test, seed")
    elif isinstance(split, Sequence) and len(split) == 3 and all(isinstance(v, int) for v in split):
        spec = validate_mapping(SplitConfig, dict(zip(("train", "validation", "test"), split)), "split",
                                "three counts")
    else:
        raise ConfigError(f"split {split!r} is not a split: give 'TRAIN:VALIDATION:TEST' counts (e.g. '4:2:4'), "
                          "names per part ('s0,s1:s2:s3'), a Split, a mapping or three counts")
    return split_of(spec, store_path, key="split")  # type: ignore[no-any-return]
