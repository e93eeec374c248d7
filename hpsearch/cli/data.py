"""``hpsearch data``: import MALA data into a snapshot store, inspect it, recompute descriptors."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hpsearch.errors import ConfigError

logger = logging.getLogger(__name__)

data_app = typer.Typer(
    help="Snapshot stores (HDF5): import MALA data, show a summary, recompute descriptors.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the main app."""
    app.add_typer(data_app, name="data")


def parse_energy_grid(text: str) -> Any:
    """``"OFFSET:SPACING:N"`` (eV, eV, count) -> EnergyGrid, e.g. ``"-5:2.5:11"``."""
    from hpsearch.physics import EnergyGrid

    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError("three fields needed")
        offset_ev, spacing_ev, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError as exc:
        raise ConfigError(
            f"--energy-grid {text!r} is not OFFSET:SPACING:N (eV, eV, integer count), e.g. -5:2.5:11 ({exc})"
        ) from exc
    if spacing_ev <= 0 or n < 1:
        raise ConfigError(f"--energy-grid {text!r}: spacing must be > 0 and N >= 1")
    return EnergyGrid(offset_ev=offset_ev, spacing_ev=spacing_ev, n=n)


def _parse_settings(text: Optional[str]) -> Optional[dict[str, Any]]:
    if text is None:
        return None
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--descriptor-settings is not valid JSON: {text!r} ({exc})") from exc
    if not isinstance(settings, dict):
        raise ConfigError(f"--descriptor-settings must be a JSON object, got {text!r}")
    return settings


@data_app.command("import-mala")
def import_mala_command(
    directory: Annotated[Path, typer.Argument(help="Folder with NAME.in.npy, NAME.out.npy, NAME.info.json.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Store to create (HDF5).")],
    energy_grid: Annotated[str, typer.Option("--energy-grid", help="LDOS energy grid OFFSET:SPACING:N in eV.")],
    descriptor_settings: Annotated[Optional[str], typer.Option(
        "--descriptor-settings", help="JSON of the settings *.in.npy was computed with [default: MALA's Be2 SNAP].")] = None,
    snapshot: Annotated[Optional[list[str]], typer.Option(
        "--snapshot", help="Import only this snapshot NAME (repeatable) [default: all].")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")] = False,
    append: Annotated[bool, typer.Option("--append", help="Add the snapshots to an existing store.")] = False,
) -> None:
    """Import MALA-format snapshots into a new snapshot store (validated, atomic)."""
    from hpsearch.data.mala import import_mala
    from hpsearch.data.store import open_store

    grid = parse_energy_grid(energy_grid)
    path = import_mala(directory, output, grid, descriptor_settings=_parse_settings(descriptor_settings),
                       names=snapshot or None, overwrite=overwrite, append=append)
    with open_store(path) as store:
        typer.echo(f"wrote {len(store.names)} snapshots to {path} (content hash {store.content_hash()[:16]})")


@data_app.command("info")
def info_command(store: Annotated[Path, typer.Argument(help="Snapshot store (HDF5).")]) -> None:
    """Print a summary of a store: snapshots, atoms, grid, features, energy grid, size, hash."""
    from rich.console import Console
    from rich.table import Table

    from hpsearch.data.store import open_store

    with open_store(store) as opened:
        rows = opened.summary_rows()
    table = Table(title=f"snapshot store {store.name}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    Console().print(table)


@data_app.command("descriptors")
def descriptors_command(
    store: Annotated[Path, typer.Argument(help="Snapshot store (HDF5) to update in place (atomically).")],
    rcut: Annotated[Optional[float], typer.Option("--rcut", help="SNAP cutoff (rcutfac) in Angstrom [default: as stored].")] = None,
    twojmax: Annotated[Optional[int], typer.Option("--twojmax", help="SNAP 2*jmax [default: as stored].")] = None,
) -> None:
    """Recompute the SNAP descriptors of every snapshot with LAMMPS and store them.

    Options not given keep the store's current SNAP settings (or the SnapSettings defaults).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hpsearch.data.store import open_store, replace_descriptors
    from hpsearch.descriptors import SnapSettings, snap_grid

    with open_store(store) as opened:
        metas = [opened.metadata(name) for name in opened.names]
    # Start from the store's SNAP settings (if it has them) so that unspecified options persist.
    current = metas[0].descriptor_settings
    base = {k: v for k, v in current.items() if k in SnapSettings.model_fields} if current.get("kind") == "snap" else {}
    given = {key: value for key, value in (("rcut", rcut), ("twojmax", twojmax)) if value is not None}
    merged = {**SnapSettings().model_dump(), **base, **given}
    options = SnapSettings.from_options(merged.pop("rcut"), merged.pop("twojmax"), merged).model_dump()
    arrays = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("SNAP descriptors", total=len(metas))
        for meta in metas:
            progress.update(task, description=f"SNAP descriptors {meta.name}")
            arrays[meta.name] = snap_grid(meta.to_atoms(), meta.grid_shape, **options)
            progress.advance(task)
    replace_descriptors(store, arrays, {"kind": "snap", **options})
    n_features = next(iter(arrays.values())).shape[-1]
    typer.echo(f"replaced descriptors of {len(arrays)} snapshots in {store} ({n_features} features, {options})")


@data_app.command("enlarge")
def enlarge_command(
    store: Annotated[Path, typer.Argument(help="Snapshot store (HDF5) to enlarge.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Synthetic store to create (HDF5).")],
    tile: Annotated[str, typer.Option("--tile", help="Supercell repeats along x,y,z, e.g. 4,4,4.")] = "2,2,2",
    copies: Annotated[int, typer.Option("--copies", help="Translated copies of every supercell.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the copies' translations.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")] = False,
) -> None:
    """Write a SYNTHETIC larger store: periodic supercells (and translated copies) of every snapshot.

    Exact symmetries of the source data, no new physics: for testing data paths at scale (streamed
    training). Every snapshot's provenance and the store's attributes say ``synthetic: true``.
    """
    from hpsearch.data.enlarge import enlarge_store
    from hpsearch.data.store import open_store

    try:
        repeats = tuple(int(v) for v in tile.split(","))
    except ValueError:
        raise ConfigError(f"--tile {tile!r} is not three whole numbers like 4,4,4") from None
    if len(repeats) != 3:
        raise ConfigError(f"--tile {tile!r} needs three whole numbers (x,y,z), like 4,4,4")
    path = enlarge_store(store, output, repeats, copies, seed, overwrite)  # type: ignore[arg-type]
    with open_store(path) as opened:
        points = sum(opened.n_points(n) for n in opened.names)
        typer.echo(f"wrote {len(opened.names)} synthetic snapshots ({points} grid points, "
                   f"{path.stat().st_size / 1e6:.1f} MB on disk) to {path}")
