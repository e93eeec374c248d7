"""``hpsearch acsd SCAN.yaml``: the descriptor search (ACSD over a grid of rcut and twojmax)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the ``acsd`` command to the main app."""
    app.command("acsd")(acsd)


def acsd(
    scan_file: Annotated[Path, typer.Argument(help="Scan YAML: store, rcut list, twojmax list, n_points, ...")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results folder (default results/<name>).")] = None,
    parallel: Annotated[Optional[str], typer.Option(help="auto | ray | serial (overrides the file).")] = None,
    uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (overrides the file).")] = None,
    no_tracking: Annotated[bool, typer.Option("--no-tracking", help="Do not log to MLflow.")] = False,
) -> None:
    """Scan descriptor settings by ACSD and choose one with the paper's rule (figures 7 and 8).

    Prints the table (rcut, twojmax, ACSD ± std, time) and the choice; writes acsd_scan.json,
    acsd_table.md, acsd_vs_rcut.png and acsd_vs_twojmax.png; logs a parent MLflow run with a
    child run per setting.
    """
    from hpsearch.cli.console import make_console
    from rich.progress import Progress
    from rich.table import Table

    from hpsearch.descriptors.scan import parse_scan_config
    from hpsearch.api import load_scan_config, run_acsd_scan
    from hpsearch.tracking.acsd import TABLE_HEADER, choice_text, table_rows

    config = load_scan_config(scan_file)
    changes: dict[str, object] = {}
    if parallel is not None:
        changes["parallel"] = parallel
    if uri is not None:
        changes["tracking"] = {**config.tracking.model_dump(), "uri": uri}
    if changes:
        config = parse_scan_config({**config.model_dump(), **changes}, source=f"{scan_file} with options")
    console = make_console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"ACSD scan {config.name}", total=config.n_settings)
        report = run_acsd_scan(config, folder=out, tracking=False if no_tracking else None,
                               on_result=lambda _: progress.advance(task))
    table = Table(title=f"ACSD scan {config.name}: {len(report.snapshots)} snapshots, "
                        f"{config.n_points}x{config.n_points} pairs each, mode {config.mode}")
    for name in TABLE_HEADER:
        table.add_column(name, justify="right" if name else "left", no_wrap=True)
    for row in table_rows(report.results, report.choice):
        table.add_row(*row, style="bold green" if row[-1].startswith("chosen") else None)
    console.print(table)
    console.print(choice_text(report.choice))
    console.print(f"results: {report.folder}  ({report.seconds:.1f} s)")
    if report.run_id:
        console.print(f"MLflow run: {report.run_id}")
