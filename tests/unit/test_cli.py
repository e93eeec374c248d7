"""Every command the README names is registered on the `hpsearch` entry point."""

from __future__ import annotations

from typer.testing import CliRunner

from hpsearch.cli import app

TOP = ["run", "resume", "searchers", "show", "naswot-study", "acsd", "ui", "compare", "demo", "data",
       "tracking", "benchmark"]
DATA = ["import-mala", "info", "descriptors", "generate"]


def test_top_level_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in TOP:
        assert f" {name} " in result.output, name


def test_data_commands() -> None:
    result = CliRunner().invoke(app, ["data", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in DATA:
        assert f" {name} " in result.output, name


def test_unknown_strategy_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsearch_space: {width: [8]}\nstrategy: {name: nope}\n")
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "nope" in message and "grid" in message and "tpe" in message
