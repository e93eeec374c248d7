"""``hpsearch data generate``: make the embedded aluminium dataset (MD + model or GPAW LDOS + SNAP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hpsearch.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the ``data`` command group (registered by hpsearch.cli.data)."""
    from hpsearch.cli.data import data_app

    if not any(command.name == "generate" for command in data_app.registered_commands):
        data_app.command("generate")(generate_command)


def _settings(small: bool, given: dict[str, Any], engine: str = "model") -> Any:
    """The engine's settings from the options given (on top of its small variant with --small)."""
    from pydantic import ValidationError

    from hpsearch.data.generate import ENGINES, DatasetSettings

    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "gpaw":
        from hpsearch.data.gpaw_dataset import GpawSettings as kind
    else:
        kind = DatasetSettings  # type: ignore[assignment]
    changes = {key: value for key, value in given.items() if value is not None}
    try:
        return kind.small(**changes) if small else kind(**changes)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise ConfigError(f"invalid dataset settings: {problems}") from exc


def generate_command(
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Store to write (default: $HPSEARCH_DATA_DIR or ./hpsearch-data, file al298-<hash>.h5).")] = None,
    atoms: Annotated[Optional[int], typer.Option("--atoms", help="Atoms per snapshot, a multiple of 4 (default: 32).")] = None,
    snapshots: Annotated[Optional[int], typer.Option("--snapshots", help="Number of snapshots (default: 8).")] = None,
    grid: Annotated[Optional[tuple[int, int, int]], typer.Option(
        "--grid", help="Real-space grid NX NY NZ (default: 24 24 24).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="MD seed (default: 0).")] = None,
    energies: Annotated[Optional[int], typer.Option("--energies", help="LDOS energy points (default: 64).")] = None,
    small: Annotated[bool, typer.Option("--small", help="Start from the engine's small test variant (model: 4 x 8 atoms, 16x8x8).")] = False,
    engine: Annotated[str, typer.Option("--engine", help="Electrons: 'model' (built-in plane-wave model) or 'gpaw' (Kohn-Sham DFT, 8 x 16 atoms by default; `make dft` installs GPAW).")] = "model",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a file at OUTPUT made with other settings.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Generate thermal fcc Al snapshots (298 K, 2.699 g/cc) with LDOS (model or GPAW) and SNAP descriptors.

    Reuses OUTPUT when it already holds a store made with the same settings.
    """
    from hpsearch.data.generate import default_store_path, generate_dataset
    from hpsearch.data.store import open_store

    settings = _settings(small, {"n_atoms": atoms, "n_snapshots": snapshots, "grid": grid, "seed": seed,
                                 "n_energies": energies}, engine)
    if engine == "gpaw":
        from hpsearch.data.gpaw_dataset import default_gpaw_store_path

        target = output or default_gpaw_store_path(settings)
    else:
        target = output or default_store_path(settings)
    path = generate_dataset(target, settings, progress=progress, overwrite=overwrite, engine=engine)
    with open_store(path) as store:
        references = [store.metadata(name).reference for name in store.names]
        digest = store.content_hash()
    band = max(r["band_energy_relative_error"] for r in references)
    electrons = max(r["electron_count_relative_error"] for r in references)
    typer.echo(f"{path}: {len(references)} snapshots, content hash {digest[:16]}")
    typer.echo(f"self-check (worst snapshot): band energy {100 * band:.3f} % (limit 1 %), "
               f"electron count {100 * electrons:.3f} % (limit 0.5 %)")
