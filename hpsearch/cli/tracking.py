"""Commands around MLflow: ``ui``, ``compare``, ``tracking sync``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

tracking_app = typer.Typer(help="MLflow tracking utilities.", no_args_is_help=True)


def ui(
    folder: Path = typer.Option(Path("mlruns"), "--folder", "-f", help="Where the SQLite store and artifacts live."),
    port: int = typer.Option(5000, "--port", "-p", help="TCP port of the UI and REST API."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind; loopback unless told otherwise."),
    detach: bool = typer.Option(False, "--detach", help="Leave the server running in the background and return."),
) -> None:
    """Start an MLflow tracking server (SQLite backend, local artifacts) and print its URL."""
    from hpsearch.tracking.server import start_server

    server = start_server(folder, host=host, port=port)
    typer.echo(f"MLflow UI: {server.url}")
    typer.echo(f"point studies at it with: export MLFLOW_TRACKING_URI={server.url}")
    if detach:
        (Path(folder) / "server.pid").write_text(str(server.process.pid))
        typer.echo(f"stop it with: kill -TERM -{server.process.pid}")
        return
    try:
        while server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("stopping the MLflow server")
    finally:
        server.stop()


def compare(
    experiment: str = typer.Argument(..., help="Name of the hpsearch experiment (MLflow experiment)."),
    uri: str = typer.Option(None, "--uri", help="Tracking URI; default MLFLOW_TRACKING_URI or ./mlruns."),
    out: Path = typer.Option(None, "--out", "-o", help="Write comparison.csv and comparison.md here."),
) -> None:
    """Print the paper's comparison table from what is in MLflow."""
    from hpsearch.cli.console import make_console
    from rich.table import Table

    from hpsearch.tracking.compare import comparison_table, format_table, markdown_table, study_runs
    from hpsearch.tracking.tracker import default_tracking_uri

    table = comparison_table(study_runs(experiment, uri or default_tracking_uri()))
    view = Table(title=f"hpsearch comparison: {experiment}")
    for name in ("strategy", "error (meV/atom)", "compute (core-s)", "wall (s)", "speed-up vs tpe", "parameters"):
        view.add_column(name)
    for row in format_table(table):
        view.add_row(*map(str, row))
    make_console().print(view)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "comparison.csv", index=False)
        (out / "comparison.md").write_text(markdown_table(table) + "\n")
        typer.echo(f"wrote {out / 'comparison.csv'} and {out / 'comparison.md'}")


@tracking_app.command("sync")
def sync(
    folder: Path = typer.Argument(..., help="A study's mlflow-journal folder with pending.jsonl."),
    uri: str = typer.Option(None, "--uri", help="Tracking URI; default MLFLOW_TRACKING_URI."),
) -> None:
    """Replay logging that was buffered while the tracking server was down."""
    from hpsearch.errors import HpsearchError
    from hpsearch.tracking.journal import sync_pending

    target = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not target:
        raise HpsearchError("no tracking server given: pass --uri URL or set MLFLOW_TRACKING_URI")
    applied, left = sync_pending(folder, target)
    typer.echo(f"applied {applied} buffered operations; {left} still pending")
    if left:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
    app.command("compare")(compare)
    app.add_typer(tracking_app, name="tracking")
