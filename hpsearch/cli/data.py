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
    help="Snapshot stores (HDF5): import MALA data, show a summary, recompute descriptors, fit baselines.",
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


_UNITS_HELP = "Unit of the LDOS in the files: '1/(eV A^3)', '1/(eV Bohr^3)' or '1/(Ry Bohr^3)' (QE pp.x)."


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
    ldos_units: Annotated[str, typer.Option("--ldos-units", help=_UNITS_HELP)] = "1/(eV A^3)",
) -> None:
    """Import MALA-format snapshots into a new snapshot store (validated, atomic)."""
    from hpsearch.data.mala import import_mala

    grid = parse_energy_grid(energy_grid)
    path = import_mala(directory, output, grid, descriptor_settings=_parse_settings(descriptor_settings),
                       names=snapshot or None, overwrite=overwrite, append=append, ldos_units=ldos_units)
    _report(path)


def _report(path: Path) -> None:
    from hpsearch.data.store import open_store

    with open_store(path) as store:
        typer.echo(f"wrote {len(store.names)} snapshots to {path} (content hash {store.content_hash()[:16]})")


def parse_triple(text: str, option: str) -> tuple[int, int, int]:
    """``"NX:NY:NZ"`` (or with commas or x) -> three positive integers."""
    parts = [p for p in text.replace(",", ":").replace("x", ":").split(":") if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) < 1:
        raise ConfigError(f"{option} {text!r} is not three positive integers NX:NY:NZ, e.g. 108:108:100")
    return (values[0], values[1], values[2])


@data_app.command("import-cube")
def import_cube_command(
    cubes: Annotated[list[Path], typer.Argument(help="The cube files of one snapshot (one per energy), or their folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Store to create or append to (HDF5).")],
    name: Annotated[str, typer.Option("--name", help="Snapshot name in the store.")],
    qe_output: Annotated[Optional[Path], typer.Option(
        "--qe-output", help="pw.x output of the run: electron count, smearing temperature, Fermi energy.")] = None,
    descriptors: Annotated[Optional[Path], typer.Option(
        "--descriptors", help="Descriptors .npy (MALA NAME.in.npy or (nx, ny, nz, n)) [default: compute SNAP].")] = None,
    descriptor_settings: Annotated[Optional[str], typer.Option(
        "--descriptor-settings", help="JSON of the SNAP settings [default: MALA's Be2 SNAP].")] = None,
    energy_grid: Annotated[Optional[str], typer.Option(
        "--energy-grid", help="OFFSET:SPACING:N in eV [default: from the files' headers].")] = None,
    ldos_units: Annotated[str, typer.Option("--ldos-units", help=_UNITS_HELP)] = "1/(Ry Bohr^3)",
    temperature: Annotated[Optional[float], typer.Option("--temperature", help="Electronic temperature in K.")] = None,
    n_electrons: Annotated[Optional[float], typer.Option("--n-electrons", help="Electrons in the cell.")] = None,
    full_grid: Annotated[Optional[str], typer.Option(
        "--full-grid", help="NX:NY:NZ of the whole cell when the files hold a block of it.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")] = False,
    append: Annotated[bool, typer.Option("--append", help="Add the snapshot to an existing store.")] = False,
) -> None:
    """Import Quantum ESPRESSO pp.x LDOS cube files (one per energy) as one snapshot."""
    from hpsearch.data.cube import read_cube_snapshot
    from hpsearch.data.store import append_snapshots, write_store

    files = sorted(p for c in cubes for p in (c.glob("*.cube") if c.is_dir() else [c]))
    if overwrite and append:
        raise ConfigError("choose either --overwrite or --append, not both")
    snap = read_cube_snapshot(
        files, name, energy_grid=parse_energy_grid(energy_grid) if energy_grid else None, unit=ldos_units,
        descriptors=descriptors, descriptor_settings=_parse_settings(descriptor_settings), qe_output=qe_output,
        temperature_k=temperature, n_electrons=n_electrons,
        full_grid_shape=parse_triple(full_grid, "--full-grid") if full_grid else None)
    if append and output.exists():
        append_snapshots(output, [snap])
    else:
        write_store(output, [snap], attrs={"source": "qe-cube"}, overwrite=overwrite)
    _report(output)


@data_app.command("info")
def info_command(store: Annotated[Path, typer.Argument(help="Snapshot store (HDF5).")]) -> None:
    """Print a summary of a store: snapshots, atoms, grid, features, energy grid, size, hash."""
    from hpsearch.cli.console import make_console
    from rich.table import Table

    from hpsearch.data.store import open_store

    with open_store(store) as opened:
        rows = opened.summary_rows()
    table = Table(title=f"snapshot store {store.name}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    make_console().print(table)


@data_app.command("baselines")
def baselines_command(
    store: Annotated[str, typer.Argument(help="Snapshot store (HDF5), or 'default' / 'small' (generated).")],
    split: Annotated[Optional[str], typer.Option(
        "--split", help="TRAIN:VALIDATION:TEST counts in store order (4:2:4) or names per part (s0,s1:s2:s3) "
        "[default: about 40 % test, 20 % validation, the rest trains].")] = None,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Also write the whole result as JSON here.")] = None,
    ridge_lambda: Annotated[Optional[float], typer.Option(
        "--ridge-lambda", help="Ridge penalty, relative to a standardised feature's variance [default: 1e-3].")] = None,
) -> None:
    """Fit ridge regression and the constant training-mean LDOS on a split and print their errors.

    A network that does not beat ridge in test LDOS RMSE says nothing about architectures on that data.
    """
    from rich.table import Table

    from hpsearch.api import baselines
    from hpsearch.cli.console import make_console

    report = baselines(store, split, ridge_lambda=ridge_lambda)
    console = make_console()
    head, rows = report.rows()
    table = Table(title="baselines (LDOS RMSE in the store's LDOS units; signed = predicted - reference)")
    for name in head:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(report.split_line(), soft_wrap=True)
    console.print(table)
    console.print(report.spread_line(), soft_wrap=True)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        console.print(f"wrote {json_file}", soft_wrap=True)


@data_app.command("release")
def release_command(
    address: Annotated[str, typer.Option(help="Ray address of the cluster: 'auto' or 'ray://host:10001'.")] = "auto",
) -> None:
    """Free the data actors that studies with ``dataset.keep_loaded`` left on a running cluster."""
    from hpsearch.parallel import ensure_ray, stop_ray
    from hpsearch.tune.shards import release_shards

    try:
        started = ensure_ray(address)
    except ConnectionError as exc:
        raise ConfigError(f"no running Ray at {address!r} ({exc}): nothing to release") from exc
    try:
        typer.echo(f"released {release_shards()} data actors")
    finally:
        if started:
            stop_ray()


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
    from hpsearch.descriptors import SnapSettings

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
            arrays[meta.name] = _snap_of(meta, options)
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


def _snap_of(meta: Any, options: dict[str, Any]) -> Any:
    """SNAP descriptors of the snapshot's stored points: the whole grid, or only a block's points."""
    from hpsearch.descriptors import grid_points_angstrom, snap_at_points, snap_grid

    if not meta.is_partial:
        return snap_grid(meta.to_atoms(), meta.grid_shape, **options)
    points = grid_points_angstrom(meta.cell_angstrom, meta.whole_grid_shape, meta.point_indices())
    return snap_at_points(meta.to_atoms(), points, **options).reshape(*meta.grid_shape, -1)
