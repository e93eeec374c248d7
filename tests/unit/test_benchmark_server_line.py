"""The benchmark's closing line never offers the URL of its own MLflow server once that server has
stopped: it points at the store folder and `hpsearch ui` instead."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from rich.console import Console


def test_a_stopped_server_is_not_offered(tmp_path: Path) -> None:
    from hpsearch.cli.benchmark import _print_server

    console = Console(record=True, width=250)
    _print_server(SimpleNamespace(server_pid=None, server_url="http://127.0.0.1:9"), tmp_path, console)
    text = console.export_text()
    assert "127.0.0.1:9" not in text
    assert f"MLflow store: {tmp_path / 'mlflow'}" in text and f"hpsearch ui --folder {tmp_path / 'mlflow'}" in text
