"""ACSD through a full SNAP grid (baseline) vs descriptors only at the sampled points (candidate).

For each (rcut, twojmax) of a small scan and each grid, both paths compute the ACSD from the same
sampled pairs; the values must agree (asserted) and the table shows the time of each path.
The sampled path needs 2 * n_points descriptor evaluations instead of nx * ny * nz, so its
speed-up is bounded by nx * ny * nz / (2 * n_points) (the "bound" column).

Systems: the real Be2 snapshot 0 (2 atoms) on its own 18x18x27 grid with its DFT LDOS, and on
20^3, 30^3, 40^3 grids with that LDOS interpolated periodically (trilinear); a 3x3x2 supercell
(36 atoms) on a 20^3 grid with the tiled LDOS interpolated the same way.

    .venv/bin/python benchmarks/bench_acsd.py [--quick] [--n-points 200] [--out results/x.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # LAMMPS' SNAP computes run on one core

import ase  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from hpsearch.descriptors import SnapSettings, acsd, acsd_sampled, snap_grid  # noqa: E402

from _outputs import output_paths

REPO = Path(__file__).resolve().parents[1]
BE2_DIR = Path(os.environ.get("HPSEARCH_BE2_DIR", REPO.parent / "shared" / "data" / "mala-be2"))
SCAN = [(3.5, 6), (4.67637, 6), (4.67637, 10), (5.5, 8)]
QUICK_SCAN = [(4.67637, 6), (4.67637, 10)]


def load_snapshot(directory: Path, index: int = 0) -> tuple[ase.Atoms, np.ndarray]:
    info = json.loads((directory / f"Be_snapshot{index}.info.json").read_text())["atoms"]
    atoms = ase.Atoms(
        numbers=info["numbers"], positions=info["positions"], cell=info["cell"], pbc=info["pbc"]
    )
    return atoms, np.load(directory / f"Be_snapshot{index}.out.npy")


def regrid(ldos: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Periodic trilinear interpolation of a grid-shaped LDOS onto another grid of the cell."""
    axes = [np.arange(n) * (old / n) for n, old in zip(shape, ldos.shape[:3])]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    channels = [
        ndimage.map_coordinates(ldos[..., e], coords, order=1, mode="grid-wrap")
        for e in range(ldos.shape[-1])
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def store_case(store_path: Path) -> tuple[str, ase.Atoms, np.ndarray]:
    """The first snapshot of an hpsearch store, on its own grid (e.g. the default Al dataset)."""
    from hpsearch.data import open_store

    with open_store(store_path) as store:
        snap = store.read(store.names[0])
    return (f"store {snap.n_atoms} atoms", snap.to_atoms(), snap.ldos)


def cases(quick: bool, store_path: Path | None = None) -> list[tuple[str, ase.Atoms, np.ndarray]]:
    atoms, ldos = load_snapshot(BE2_DIR)
    found = [("Be2", atoms, ldos), ("Be2", atoms, regrid(ldos, (20, 20, 20)))]
    if store_path is not None:
        found.append(store_case(store_path))
    if quick:
        return found
    found += [("Be2", atoms, regrid(ldos, (n, n, n))) for n in (30, 40)]
    supercell = atoms.repeat((3, 3, 2))
    tiled = np.tile(ldos, (3, 3, 2, 1))
    found.append(("Be2 x (3,3,2)", supercell, regrid(tiled, (20, 20, 20))))
    return found


def measure(
    name: str, atoms: ase.Atoms, ldos: np.ndarray, settings: SnapSettings, n_points: int, seed: int
) -> dict[str, object]:
    shape = ldos.shape[:3]
    start = time.perf_counter()
    full_value = acsd(snap_grid(atoms, shape, **settings.model_dump()), ldos, n_points, seed)
    full_s = time.perf_counter() - start
    sampled_times, sampled_value = [], float("nan")
    for _ in range(3):
        start = time.perf_counter()
        sampled_value = acsd_sampled([atoms], [ldos], settings, n_points, seed)
        sampled_times.append(time.perf_counter() - start)
    sampled_s = statistics.median(sampled_times)
    assert abs(full_value - sampled_value) <= 1e-6, (name, shape, full_value, sampled_value)
    n_grid = int(np.prod(shape))
    return {
        "system": name,
        "n_atoms": len(atoms),
        "grid": "x".join(map(str, shape)),
        "grid_points": n_grid,
        "rcut": settings.rcut,
        "twojmax": settings.twojmax,
        "n_points": n_points,
        "full_grid_s": full_s,
        "sampled_s": sampled_s,
        "ratio": full_s / sampled_s,
        "bound": n_grid / (2 * n_points),
        "acsd_full_grid": full_value,
        "acsd_sampled": sampled_value,
        "abs_difference": abs(full_value - sampled_value),
    }


def print_table(rows: list[dict[str, object]]) -> None:
    header = (
        f"{'system':<14}{'atoms':>6}{'grid':>10}{'rcut':>8}{'2J':>4}"
        f"{'full s':>9}{'sampled s':>11}{'ratio':>8}{'bound':>7}{'ACSD':>10}{'|diff|':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['system']:<14}{r['n_atoms']:>6}{r['grid']:>10}{r['rcut']:>8.3f}{r['twojmax']:>4}"
            f"{r['full_grid_s']:>9.2f}{r['sampled_s']:>11.3f}{r['ratio']:>7.1f}x"
            f"{r['bound']:>7.0f}{r['acsd_full_grid']:>10.5f}{r['abs_difference']:>9.1e}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_acsd.json")
    parser.add_argument("--n-points", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="two settings, two grids")
    parser.add_argument("--store", type=Path, default=None,
                        help="also measure on the first snapshot of this store, on its grid "
                             "(e.g. the default dataset: hpsearch data generate -o al.h5)")
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_acsd.json")
    return args


def main() -> None:
    args = parse_args()

    from hpsearch._lammps import new_lammps

    new_lammps().close()  # load LAMMPS (and torch) once, outside every timing
    started = time.perf_counter()
    rows = []
    for rcut, twojmax in QUICK_SCAN if args.quick else SCAN:
        settings = SnapSettings(rcut=rcut, twojmax=twojmax)
        for name, atoms, ldos in cases(args.quick, args.store):
            rows.append(measure(name, atoms, ldos, settings, args.n_points, args.seed))
    print_table(rows)
    total_s = time.perf_counter() - started
    print(f"\nall ACSD pairs agree to <= 1e-6; total {total_s:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "n_points": args.n_points,
        "seed": args.seed,
        "timing": "full grid: one run; sampled: median of 3 runs; LAMMPS loaded beforehand",
        "total_s": total_s,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
