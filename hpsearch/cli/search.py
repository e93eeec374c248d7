"""Commands that run studies: ``run``, ``resume``, ``searchers``, ``show``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer

_RESULTS_HELP = "Folder holding the studies (each in <results>/<name>)."
_SHOWN = ("trial_id", "kind", "phase", "status", "val_error_mev_per_atom", "naswot_score", "trial_seconds")
_HEADERS = {"val_error_mev_per_atom": "validation error meV/atom", "naswot_score": "NASWOT", "trial_seconds": "s", "trial_id": "trial"}


def _console() -> Any:
    from hpsearch.cli.console import make_console

    return make_console()


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_result(result: Any, all_columns: bool = False, limit: int | None = None) -> None:
    """A rich table of the trials, then the best configuration and the compute used."""
    from rich.table import Table

    from hpsearch.cli.console import plain
    from hpsearch.tune.results import COLUMNS

    frame = result.trials
    hyper = [c for c in frame.columns if c not in COLUMNS]
    columns = list(frame.columns) if all_columns else [c for c in _SHOWN if c in frame] + hyper
    table = Table(title=f"study {result.name}: {len(frame)} trials")
    for column in columns:
        table.add_column(_HEADERS.get(column, column), justify="right" if frame[column].dtype.kind in "fi" else "left")
    rows = frame if limit is None else frame.head(limit)
    for _, row in rows.iterrows():
        style = "bold green" if result.best_trial_id and row.get("trial_id") == result.best_trial_id else None
        table.add_row(*(_cell(row[c]) for c in columns), style=style)
    console = _console()
    console.print(table)
    console.print(result.summary())
    if result.best_config:
        console.print(f"best configuration (trial {result.best_trial_id}): {plain(result.best_config)}")


def run(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    address: Optional[str] = typer.Option(None, help="Ray address: 'auto' or 'ray://host:10001' (default: local)."),
    name: Optional[str] = typer.Option(None, help="Study name (default: the file's `name`)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate everything, start nothing."),
) -> None:
    """Run the study defined in EXPERIMENT to the end."""
    from hpsearch.config.experiment import load_experiment, renamed, validate_experiment
    from hpsearch.tune.runner import run_study

    config = load_experiment(experiment)
    if name:
        config = renamed(config, name)
    if dry_run:  # a run validates first, once (its warnings too)
        validate_experiment(config)
        typer.echo(f"{experiment}: valid; study {config.name!r}, strategy {config.strategy.name}, "
                   f"results in {config.results_dir}")
        return
    print_result(run_study(config, address=address), limit=50)


def resume(
    name: str = typer.Argument(..., help="Study name (or its folder)."),
    results: Path = typer.Option(Path("results"), help=_RESULTS_HELP),
    address: Optional[str] = typer.Option(None, help="Ray address: 'auto' or 'ray://host:10001' (default: local)."),
) -> None:
    """Go on with an interrupted study where it stopped; no finished trial runs again."""
    from hpsearch.tune.runner import resume_study

    print_result(resume_study(name, results_root=results, address=address), limit=50)


def searchers() -> None:
    """List the registered strategies and schedulers (built-in and plug-ins)."""
    from rich.table import Table

    from hpsearch.config.registry import describe_all

    table = Table(title="search strategies and schedulers (entry points hpsearch.searchers / hpsearch.schedulers)")
    for column in ("kind", "name", "description"):
        table.add_column(column)
    for kind, plugin, description in describe_all():
        table.add_row(kind, plugin, description)
    _console().print(table)


def show(
    name: str = typer.Argument(..., help="Study name (or its folder)."),
    results: Path = typer.Option(Path("results"), help=_RESULTS_HELP),
    all_columns: bool = typer.Option(False, "--all", help="Show every column."),
) -> None:
    """Show the table of trials of a study and its best configuration."""
    from hpsearch.tune.results import StudyResult
    from hpsearch.tune.runner import find_study

    print_result(StudyResult.load(find_study(name, results_root=results)), all_columns=all_columns)


def register(app: typer.Typer) -> None:
    """Add run, resume, searchers and show to the main command."""
    app.command("run")(run)
    app.command("resume")(resume)
    app.command("searchers")(searchers)
    app.command("show")(show)
