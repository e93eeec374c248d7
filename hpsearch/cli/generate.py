"""``hpsearch data generate``: make an embedded dataset (MD + DFT or model LDOS + SNAP descriptors)."""

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


#: options that only some engines take, and the engines that take them
_ENGINE_OPTIONS = {"n_atoms": ("--atoms", ("model", "gpaw")), "grid": ("--grid", ("model", "gpaw")),
                   "repeats": ("--repeats", ("qe",))}


def _settings(small: bool, given: dict[str, Any], engine: str = "qe") -> Any:
    """The engine's settings from the options given (on top of its small variant with --small)."""
    from pydantic import ValidationError

    from hpsearch.data.generate import ENGINES, default_settings

    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    kind = type(default_settings(engine))
    changes = {key: value for key, value in given.items() if value is not None}
    for key in list(changes):
        if key in _ENGINE_OPTIONS and engine not in _ENGINE_OPTIONS[key][1]:
            option, engines = _ENGINE_OPTIONS[key]
            raise ConfigError(f"{option} is an option of the {' and '.join(engines)} engine(s), not of --engine "
                              f"{engine}" + (": the qe engine's cell is set by --repeats A B C (copies of the 2-atom "
                                             "hcp Be cell)" if engine == "qe" else ""))
    try:
        return kind.small(**changes) if small else kind(**changes)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise ConfigError(f"invalid dataset settings: {problems}") from exc


def generate_command(
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Store to write (default: $HPSEARCH_DATA_DIR or ./hpsearch-data, file be1000-qe-<hash>.h5, "
        "al298-<hash>.h5 or al298-gpaw-<hash>.h5).")] = None,
    atoms: Annotated[Optional[int], typer.Option("--atoms", help="model/gpaw: atoms per snapshot, a multiple of 4 (default: 32 / 16).")] = None,
    repeats: Annotated[Optional[tuple[int, int, int]], typer.Option(
        "--repeats", help="qe: copies A B C of the 2-atom hcp Be cell (default: 1 1 1).")] = None,
    snapshots: Annotated[Optional[int], typer.Option("--snapshots", help="Number of snapshots (default: 12 qe, 12 model, 8 gpaw).")] = None,
    grid: Annotated[Optional[tuple[int, int, int]], typer.Option(
        "--grid", help="model/gpaw: real-space grid NX NY NZ (qe: set by the density cutoff).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="MD seed (default: 0).")] = None,
    energies: Annotated[Optional[int], typer.Option("--energies", help="LDOS energy points (default: 37 qe, 64 model, 140 gpaw).")] = None,
    small: Annotated[bool, typer.Option("--small", help="Start from the engine's small test variant (qe: 2 x 2 atoms at 25 Ry; model: 4 x 8 atoms, 16x8x8).")] = False,
    engine: Annotated[str, typer.Option("--engine", help="Electrons: 'qe' (Quantum ESPRESSO DFT of thermal Be, the default; `make qe` installs it), 'model' (built-in plane-wave model of Al) or 'gpaw' (GPAW DFT of Al; `make dft`).")] = "qe",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a file at OUTPUT made with other settings.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Generate snapshots with LDOS and SNAP descriptors: Be at 1000 K with Quantum ESPRESSO (default),
    or fcc Al with the built-in model or GPAW.

    Reuses OUTPUT when it already holds a store made with the same settings.
    """
    from hpsearch.data.generate import default_store_path, generate_dataset
    from hpsearch.data.store import open_store

    settings = _settings(small, {"n_atoms": atoms, "n_snapshots": snapshots, "grid": grid, "seed": seed,
                                 "n_energies": energies, "repeats": repeats}, engine)
    target = output or default_store_path(settings)
    path = generate_dataset(target, settings, progress=progress, overwrite=overwrite, engine=engine)
    with open_store(path) as store:
        references = [store.metadata(name).reference for name in store.names]
        digest = store.content_hash()
    band = max(r["band_energy_relative_error"] for r in references)
    typer.echo(f"{path}: {len(references)} snapshots, content hash {digest[:16]}")
    if engine == "qe":
        dos = max(r["dos_relative_error"] for r in references)
        typer.echo(f"self-check (worst snapshot): band energy {100 * band:.3f} % (limit 1 %), LDOS against the "
                   f"eigenvalue DOS {100 * dos:.3f} % of the electrons (limit 1 %)")
        return
    electrons = max(r["electron_count_relative_error"] for r in references)
    typer.echo(f"self-check (worst snapshot): band energy {100 * band:.3f} % (limit 1 %), "
               f"electron count {100 * electrons:.3f} % (limit 0.5 %)")
