"""hpsearch._env: defaults never override the user's values; scoped values are restored."""

from __future__ import annotations

import os

import pytest

from hpsearch import _env


def test_defaults_keep_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    _env.ray_defaults()
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


def test_tune_output_quiet_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*_env.TUNE, *_env.TUNE_QUIET):
        monkeypatch.delenv(name, raising=False)
    _env.tune_defaults(quiet=False)
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
    assert os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] == "1"
    _env.tune_defaults(quiet=True)
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"


def test_command_line_width_overrides_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    _env.command_line_defaults(width=0, verbose=True)
    assert os.environ["COLUMNS"] == "80" and "MLFLOW_LOGGING_LEVEL" not in os.environ
    _env.command_line_defaults(width=132, verbose=False)
    assert os.environ["COLUMNS"] == "132" and os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"


def test_scoped_restores_set_and_unset_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with _env.scoped(_env.one_thread_per_process()):
        assert all(os.environ[name] == "1" for name in _env.THREAD_VARIABLES)
    assert os.environ["OMP_NUM_THREADS"] == "8"
    assert "MKL_NUM_THREADS" not in os.environ
