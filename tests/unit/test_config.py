"""The experiment definition: a full YAML round trip, and clear errors before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hpsearch.api import Experiment
from hpsearch.config.experiment import (
    DEFAULT_HYPERPARAMETERS,
    ExperimentConfig,
    network_spec,
    parse_experiment,
    training_settings,
    validate_experiment,
)
from hpsearch.errors import ConfigError

FULL = """
name: be2-tpe
dataset: {store: data/be2.h5, split: {train: 2, validation: 1, test: 1}}
search_space:
  n_layers: {type: int, low: 1, high: 3}
  width: [32, 64, 128]
  activation: [ReLU, LeakyReLU]
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
fixed: {max_epochs: 30, batch_size: 128}
strategy: {name: tpe, options: {n_startup_trials: 5, multivariate: true}}
scheduler: {name: naswot-pruner, options: {quantile: 0.5, warmup_trials: 5}}
budget: {max_trials: 40, max_concurrent: 2, time_budget_s: 3600}
repeats: 3
resources: {cpus: 2, gpus: 0.25}
training: {momentum: 0.0, device: cpu}
naswot: {batch_size: 64, n_init: 5}
seed: 7
tracking: {uri: "http://127.0.0.1:5000", experiment: be2}
storage_path: results/be2-tpe
"""


def _base(**changes: object) -> dict:
    return {"name": "t", "search_space": {"width": [8, 16]}, "strategy": {"name": "grid"}, **changes}


def _error(raw: dict, validate: bool = False) -> str:
    with pytest.raises(ConfigError) as info:
        config = parse_experiment(raw)
        if validate:
            validate_experiment(config)
    return str(info.value)


def test_full_yaml_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(FULL)
    experiment = Experiment.from_yaml(path).validate()
    c = experiment.config
    assert c.strategy.options == {"n_startup_trials": 5, "multivariate": True}
    assert c.resources.as_tune() == {"cpu": 2.0, "gpu": 0.25}
    assert c.repeats == 3 and c.seed == 7 and c.budget.max_trials == 40
    assert c.search_space.parameters["learning_rate"].log is True
    assert c.hyperparameter_defaults() == {**DEFAULT_HYPERPARAMETERS, "max_epochs": 30, "batch_size": 128}
    again = ExperimentConfig.model_validate_json(c.model_dump_json())
    assert again == c
    strategy = c.make_strategy()
    assert strategy.context.max_trials == 40 and strategy.context.seed == 7
    assert strategy.context.fixed["batch_size"] == 128


def test_results_dir_defaults_to_results_slash_name() -> None:
    config = parse_experiment(_base())
    assert config.results_dir == (Path("results") / "t").resolve()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_base(budgt={"max_trials": 3}), r"budgt: unknown key"),
        (_base(budget={"max_trial": 3}), r"budget.max_trial: unknown key"),
        (_base(budget={"max_trials": "many"}), r"budget.max_trials: .*integer.*'many'"),
        (_base(repeats=0), r"repeats: .*greater than or equal to 1"),
        (_base(search_space={}), r"search_space.*empty"),
        (_base(search_space={"widht": [8]}), r"unknown hyperparameter 'widht'.*width"),
        (_base(search_space={"width": {"type": "int", "low": 5, "high": 1}}), r"low <= high"),
        (_base(search_space={"width": [8, 8]}), r"unique"),
        (_base(strategy={"name": "bayes"}), r"unknown strategy 'bayes'.*grid.*tpe"),
        (_base(strategy={"name": "tpe", "options": {"n_startup": 3}}), r"strategy.*n_startup.*unknown key"),
        (_base(scheduler={"name": "hyperbandd"}), r"unknown scheduler 'hyperbandd'.*asha.*hyperband.*naswot-pruner"),
        (_base(scheduler={"name": "naswot-pruner", "options": {"quantile": 2}}), r"quantile"),
        (_base(fixed={"learnig_rate": 0.1}), r"unknown hyperparameter 'learnig_rate'"),
        (_base(resources={"gpus": 1.5}), r"whole number"),
        (_base(name="a b/c"), r"name 'a b/c'"),
        (_base(naswot={"convention": "mala"}), r"naswot.convention is not a setting.*proxy: naswot-paper"),
        (_base(dataset={"split": {"train": 2, "validation": ["x"], "test": 1}}), r"all as counts"),
    ],
)
def test_invalid_configs_name_the_key(raw: dict, expected: str) -> None:
    import re

    message = _error(raw)
    assert re.search(expected, message), message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_base(search_space={"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}}),
         r"learning_rate.*continuous.*levels"),
        (_base(search_space={"activation": ["ReLU", "Swish9"]}), r"activation='Swish9'.*unknown activation"),
        (_base(search_space={"optimizer": ["adam", "lbfgs"]}), r"optimizer='lbfgs'"),
        (_base(fixed={"learning_rate": -1.0}), r"fixed.*learning_rate"),
        (_base(fixed={"weight_decay": float("nan")}), r"fixed.weight_decay is nan"),
        (_base(strategy={"name": "tpe"}), r"needs a budget.*max_trials"),
        (_base(search_space={"width": [8, 16, 32]}, budget={"max_trials": 2}), r"3 combinations.*max_trials is 2"),
    ],
)
def test_impossible_combinations_fail_validation(raw: dict, expected: str) -> None:
    import re

    message = _error(raw, validate=True)
    assert re.search(expected, message), message


def test_yaml_problems_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Experiment.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Experiment.from_yaml(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        Experiment.from_yaml(listing)


def test_hyperparameters_map_to_network_and_training() -> None:
    params = {**DEFAULT_HYPERPARAMETERS, "n_layers": 3, "width": 32, "width_2": 16, "activation_3": "Tanh"}
    spec = network_spec(params, n_in=91, n_out=11)
    assert spec.widths == (32, 16, 32)
    assert spec.activations == ("ReLU", "ReLU", "Tanh")
    uniform = network_spec({**DEFAULT_HYPERPARAMETERS, "n_layers": 2}, 91, 11)
    assert uniform.widths == (64, 64) and uniform.activations == "ReLU"
    config = parse_experiment(_base(training={"momentum": 0.5}))
    settings = training_settings({**params, "optimizer": "sgd", "learning_rate": 0.05}, config.training, seed=4)
    assert (settings.optimizer, settings.learning_rate, settings.momentum, settings.seed) == ("sgd", 0.05, 0.5, 4)


def test_with_name_keeps_everything_else() -> None:
    experiment = Experiment.from_dict(_base(seed=3))
    renamed = experiment.with_name("other")
    assert renamed.config.name == "other" and renamed.config.seed == 3
    assert renamed.config.results_dir.name == "other"


def test_bad_device_is_refused() -> None:
    assert "device 'gpu0'" in _error(_base(training={"device": "gpu0"}))


def test_third_party_strategy_is_found_without_core_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package registering under hpsearch.searchers appears in `hpsearch searchers` and loads."""
    from typer.testing import CliRunner

    from hpsearch.cli import app
    from hpsearch.config.registry import available_strategies, load_strategy

    (tmp_path / "my_plugin.py").write_text(
        "from hpsearch.config.strategy import Strategy\n"
        "class RandomPick(Strategy):\n"
        "    name = 'random-pick'\n"
        "    description = 'Third-party test strategy: one random point.'\n"
        "    def make_searcher(self):\n"
        "        raise NotImplementedError\n"
    )
    dist = tmp_path / "my_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hpsearch.searchers]\nrandom-pick = my_plugin:RandomPick\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "random-pick" in available_strategies()
    assert load_strategy("random-pick").__name__ == "RandomPick"
    out = CliRunner().invoke(app, ["searchers"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "random-pick" in out.output and "Third-party test strategy" in out.output
    assert "grid" in out.output and "naswot-pruner" in out.output
