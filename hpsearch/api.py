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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.config.experiment import (
    ExperimentConfig,
    load_experiment,
    parse_experiment,
    renamed,
    validate_experiment,
)
from hpsearch.tune.results import StudyResult

if TYPE_CHECKING:
    from ray.tune import Callback

    from hpsearch.data.descriptor_scan import ScanReport
    from hpsearch.descriptors.scan import AcsdScanConfig, SettingResult

__all__ = ["Experiment", "ExperimentConfig", "StudyResult", "acsd_scan", "load_scan_config", "proxy_study",
           "run_acsd_scan"]


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
    ) -> StudyResult:
        """Run the study to the end (local Ray unless `address`); saved in ``config.results_dir``."""
        from hpsearch.tune.runner import run_study

        experiment = self.with_name(name) if name else self
        return run_study(experiment.config, address=address, callbacks=callbacks)

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
        config = validate_mapping(ProxyStudyConfig, {**config.model_dump(), **overrides}, "proxy study",
                                  "store, n_architectures, ...")
    study = run_proxy_study(config)
    files = write_study(study, out_dir)
    if config.tracking_enabled():
        from hpsearch.tracking.proxy_study import log_proxy_study

        log_proxy_study(study, out_dir, files)
    return study
