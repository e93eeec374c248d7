"""How close is the model engine to Kohn-Sham DFT? Both engines on the same MD atoms.

Generates (or reuses) the GPAW store (``GpawSettings()``: 8 snapshots of 16 Al atoms) and the
model engine's stores on the same atoms and grid (``GpawSettings().model_settings()``: the
model's own k-mesh, and the model at GPAW's k-mesh), then compares each model store with GPAW:

* energies on each engine's own scale differ by a constant, so every comparison is relative to
  the engine's Fermi level E_F (from its eigenvalues) or its lowest level;
* LDOS cosine similarity per grid point over E - E_F in [-10.5, +1.0] eV (both LDOS linearly
  interpolated onto one axis): median and 5th percentile over all points of all snapshots;
* occupied bandwidth E_F - e_min (eV), and the band energy per atom measured from E_F,
  (E_band - N E_F) / n_atoms (meV/atom; independent of the energy zero);
* the snapshot-to-snapshot variation of the band energy per atom (what a surrogate's loss sees):
  its spread in each engine, the Pearson correlation between engines and the rms difference;
* a DOS overlay figure (PNG); optionally (``--naswot K``) the NASWOT/error Kendall tau on each,
  and (``--ranking R``) the strategy ranking of the quick benchmark (``experiments/quick/``, R
  repeats, split 2 / 3 / 3 of the 8 snapshots) on the GPAW store and on the model store at the
  model's own k-mesh: median test error with its 95 % CI per strategy, and the rank of each.

Everything it writes goes under ``--out`` (a folder, or a .json file whose folder holds the rest): the
figure, the studies and, unless ``--data-dir`` names another place, the generated stores
(``stores/``); ``--gpaw-store`` is only read.

    .venv/bin/python benchmarks/bench_engine_validation.py [--data-dir DIR] [--gpaw-store STORE.h5]
        [--out results/engine-validation] [--naswot 12] [--ranking 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.data.generate import generate_dataset
from hpsearch.data.gpaw_dataset import GpawSettings, default_gpaw_store_path
from hpsearch.data.store import Snapshot, open_store

from _outputs import output_paths

log = logging.getLogger("bench_engine_validation")
RELATIVE_AXIS_EV = np.arange(-10.5, 1.0 + 1e-9, 0.05)


def _snapshots(path: Path) -> list[Snapshot]:
    with open_store(path) as store:
        return [store.read(name) for name in store.names]


def _on_relative_axis(snap: Snapshot, extra_sigma_ev: float = 0.0) -> np.ndarray:
    """LDOS (n_points, n_axis) interpolated onto E - E_F (linear in energy).

    ``extra_sigma_ev`` > 0 first convolves the LDOS with a Gaussian of that width on its own grid:
    Gaussians add in quadrature, so 0.1 eV data convolved with 0.229 eV is 0.25 eV data (the top
    0.7 eV of the window lack levels above it; the comparison axis stops 0.6 eV below the top).
    """
    energies = snap.energy_grid.energies - snap.reference["fermi_energy_ev"]
    if energies[0] > RELATIVE_AXIS_EV[0] or energies[-1] < RELATIVE_AXIS_EV[-1]:
        raise ValueError(f"{snap.name}: window {energies[0]:.2f}..{energies[-1]:.2f} eV around E_F does not cover "
                         f"the comparison axis {RELATIVE_AXIS_EV[0]}..{RELATIVE_AXIS_EV[-1]} eV")
    ldos = np.asarray(snap.ldos, dtype=np.float64).reshape(-1, len(energies))
    if extra_sigma_ev > 0:
        from scipy.ndimage import gaussian_filter1d

        ldos = gaussian_filter1d(ldos, extra_sigma_ev / snap.energy_grid.spacing_ev, axis=1, mode="constant")
    upper = np.clip(np.searchsorted(energies, RELATIVE_AXIS_EV), 1, len(energies) - 1)
    fraction = (RELATIVE_AXIS_EV - energies[upper - 1]) / (energies[upper] - energies[upper - 1])
    return ldos[:, upper - 1] * (1.0 - fraction) + ldos[:, upper] * fraction


def _cosines(model: Snapshot, dft: Snapshot, extra_sigma_ev: float) -> np.ndarray:
    a, b = _on_relative_axis(model), _on_relative_axis(dft, extra_sigma_ev)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _broadening(snap: Snapshot) -> float:
    """The Gaussian broadening of a generated store (model: settings; GPAW: DFT settings)."""
    dft = snap.provenance.get("dft")
    return float(dft["ldos_broadening_ev"]) if dft else float(snap.provenance["model"]["electrons"]["broadening_ev"])


def _energetics(snap: Snapshot) -> dict[str, float]:
    reference, n = snap.reference, snap.n_atoms
    return {"bandwidth_ev": reference["fermi_energy_ev"] - reference["lowest_level_ev"],
            "band_energy_from_fermi_mev_per_atom":
                1000.0 * (reference["band_energy_ev"] - snap.n_electrons * reference["fermi_energy_ev"]) / n,
            "band_energy_mev_per_atom": 1000.0 * reference["band_energy_ev"] / n}


def compare(model_snaps: list[Snapshot], dft_snaps: list[Snapshot], rebroaden: bool = False) -> dict[str, Any]:
    """The comparison numbers of one model store against the GPAW store (same atoms).

    ``rebroaden``: GPAW's LDOS convolved to the model's broadening before the cosine.
    """
    for a, b in zip(model_snaps, dft_snaps, strict=True):
        if not np.array_equal(a.positions_angstrom, b.positions_angstrom):
            raise ValueError(f"{a.name} and {b.name} hold different atoms: the comparison needs the same MD")
    extra = 0.0
    if rebroaden:
        model_sigma, dft_sigma = _broadening(model_snaps[0]), _broadening(dft_snaps[0])
        extra = float(np.sqrt(max(model_sigma**2 - dft_sigma**2, 0.0)))
    cosines = np.concatenate([_cosines(a, b, extra) for a, b in zip(model_snaps, dft_snaps)])
    model = [_energetics(s) for s in model_snaps]
    dft = [_energetics(s) for s in dft_snaps]

    def column(rows: list[dict[str, float]], key: str) -> np.ndarray:
        return np.array([row[key] for row in rows])

    bandwidth = column(model, "bandwidth_ev") - column(dft, "bandwidth_ev")
    from_fermi = column(model, "band_energy_from_fermi_mev_per_atom") - column(dft, "band_energy_from_fermi_mev_per_atom")
    fluct_model = column(model, "band_energy_mev_per_atom") - column(model, "band_energy_mev_per_atom").mean()
    fluct_dft = column(dft, "band_energy_mev_per_atom") - column(dft, "band_energy_mev_per_atom").mean()
    return {
        "n_snapshots": len(dft_snaps), "n_points": int(cosines.size), "gpaw_extra_broadening_ev": extra,
        "ldos_cosine_median": float(np.median(cosines)), "ldos_cosine_p5": float(np.percentile(cosines, 5)),
        "bandwidth_model_ev": float(column(model, "bandwidth_ev").mean()),
        "bandwidth_gpaw_ev": float(column(dft, "bandwidth_ev").mean()),
        "bandwidth_difference_ev": float(bandwidth.mean()),
        "band_energy_from_fermi_difference_mev_per_atom": float(from_fermi.mean()),
        "band_energy_from_fermi_difference_std_mev_per_atom": float(from_fermi.std()),
        "fluctuation_std_model_mev_per_atom": float(fluct_model.std()),
        "fluctuation_std_gpaw_mev_per_atom": float(fluct_dft.std()),
        "fluctuation_correlation": float(np.corrcoef(fluct_model, fluct_dft)[0, 1]) if len(dft_snaps) > 2 else None,
        "fluctuation_rms_difference_mev_per_atom": float(np.sqrt(np.mean((fluct_model - fluct_dft) ** 2))),
    }


def dos_figure(stores: dict[str, tuple[list[Snapshot], float]], path: Path) -> None:
    """DOS per atom against E - E_F, mean over snapshots, one line per (store, extra broadening)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (snaps, extra_sigma_ev) in stores.items():
        curves = []
        for snap in snaps:
            ldos = _on_relative_axis(snap, extra_sigma_ev)
            curves.append(ldos.sum(axis=0) * snap.voxel_volume_angstrom3 / snap.n_atoms)
        ax.plot(RELATIVE_AXIS_EV, np.mean(curves, axis=0), label=label)
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("E - E_F (eV)")
    ax.set_ylabel("DOS (states / eV / atom), mean over snapshots")
    ax.set_title("Al, 16 atoms at 298 K: model engine vs GPAW (PBE) on the same MD atoms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def naswot_tau(store: Path, out: Path, n_architectures: int) -> dict[str, Any]:
    """Kendall tau between NASWOT score and trained error on one store (figure 5, small budget:
    at most 20 epochs, patience 5), with its p-value and the training settings it was measured at."""
    from hpsearch.model import TrainingSettings
    from hpsearch.scoring.experiment import run_naswot_study

    study = run_naswot_study(store, out, n_architectures=n_architectures,
                             settings=TrainingSettings(max_epochs=20, patience=5, seed=0))
    keep = ("n", "n_excluded", "tau_paper", "p_value_paper", "tau_v1", "p_value_v1", "training_seconds", "settings")
    return {key: value for key, value in study.to_dict().items() if key in keep}


#: the quick benchmark's split of the 8 snapshots of the GPAW defaults (train / validation / test)
RANKING_SPLIT = {"train": 2, "validation": 3, "test": 3}


def strategy_ranking(store: Path, out: Path, repeats: int) -> dict[str, Any]:
    """The quick benchmark on one store: per strategy the median test error, its CI and its rank."""
    from hpsearch.bench.paper import BenchmarkSettings, run_paper_benchmark

    report = run_paper_benchmark(BenchmarkSettings(
        out=out, quick=True, repeats=repeats, overwrite=True, progress=False, references=("tpe",),
        overrides={"dataset": {"store": str(store.resolve()), "split": RANKING_SPLIT}}))
    table = report.table.sort_values("test_error_mev_per_atom").reset_index(drop=True)
    rows = {}
    for rank, row in table.iterrows():
        rows[row["strategy"]] = {
            "rank": int(rank) + 1, "test_error_mev_per_atom": float(row["test_error_mev_per_atom"]),
            "ci": [float(row["test_error_mev_per_atom_ci_low"]), float(row["test_error_mev_per_atom_ci_high"])],
            "search_core_s": float(row["search_core_s"]), "p_vs_tpe": float(row["p_vs_tpe"]),
        }
    return {"repeats": repeats, "split": RANKING_SPLIT, "strategies": rows, "markdown": report.markdown,
            "wall_seconds": report.wall_seconds}


def _ranking_table(rankings: dict[str, dict[str, Any]]) -> str:
    labels = list(rankings)
    strategies = sorted({s for r in rankings.values() for s in r["strategies"]})
    lines = ["| strategy | " + " | ".join(f"{label}: test error (meV/atom), rank" for label in labels) + " |",
             "|" + "---|" * (len(labels) + 1)]
    for strategy in strategies:
        cells = []
        for label in labels:
            r = rankings[label]["strategies"].get(strategy)
            cells.append("n/a" if r is None else
                         f"{r['test_error_mev_per_atom']:.3g} [{r['ci'][0]:.3g}, {r['ci'][1]:.3g}], {r['rank']}")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table(rows: dict[str, dict[str, Any]]) -> str:
    header = ("| model store | LDOS cosine median | LDOS cosine 5th pct | bandwidth model / GPAW (eV) | "
              "band energy from E_F, model - GPAW (meV/atom) | band-energy fluctuation std model / GPAW "
              "(meV/atom) | fluctuation correlation | fluctuation rms difference (meV/atom) |")
    lines = [header, "|" + "---|" * 8]
    for label, r in rows.items():
        correlation = "n/a" if r["fluctuation_correlation"] is None else f"{r['fluctuation_correlation']:.2f}"
        lines.append(
            f"| {label} | {r['ldos_cosine_median']:.3f} | {r['ldos_cosine_p5']:.3f} | "
            f"{r['bandwidth_model_ev']:.2f} / {r['bandwidth_gpaw_ev']:.2f} | "
            f"{r['band_energy_from_fermi_difference_mev_per_atom']:+.0f} "
            f"(+-{r['band_energy_from_fermi_difference_std_mev_per_atom']:.0f}) | "
            f"{r['fluctuation_std_model_mev_per_atom']:.1f} / {r['fluctuation_std_gpaw_mev_per_atom']:.1f} | "
            f"{correlation} | {r['fluctuation_rms_difference_mev_per_atom']:.1f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file whose folder holds the rest) is checked before
    any work: ``args.out`` becomes the folder, ``args.json`` the report, ``args.data_dir`` where the
    generated stores go (default: ``stores/`` in that folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the generated stores are written and reused (default: <out folder>/stores)")
    parser.add_argument("--gpaw-store", type=Path, default=None,
                        help="an existing GPAW store, only read (default: generate one)")
    parser.add_argument("--out", type=Path, default=Path("results/engine-validation"),
                        help="a folder, or a .json file whose folder holds the figure, studies and stores")
    parser.add_argument("--naswot", type=int, default=0, help="architectures per NASWOT study (0: skip)")
    parser.add_argument("--ranking", type=int, default=0,
                        help="repeats of the quick benchmark on the GPAW and the model store (0: skip)")
    args = parser.parse_args(argv)
    if args.gpaw_store is not None and not args.gpaw_store.is_file():
        parser.error(f"--gpaw-store {args.gpaw_store} is not a file: give a GPAW store (.h5) or leave it out")
    args.out, args.json = output_paths(args.out, "engine_validation.json")
    args.data_dir = args.data_dir if args.data_dir is not None else args.out / "stores"
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    settings = GpawSettings()
    started = time.perf_counter()
    gpaw_path = args.gpaw_store or generate_dataset(args.data_dir / default_gpaw_store_path(settings).name,
                                                    settings, progress=False, engine="gpaw")
    seconds = {"gpaw": time.perf_counter() - started}
    model_settings = {"model (own defaults, 6x6x12 k)": settings.model_settings(),
                      "model (GPAW's 2x2x4 k)": settings.model_settings(kpoint_length_angstrom=16.0)}
    model_paths = {}
    for label, model in model_settings.items():
        start = time.perf_counter()
        model_paths[label] = generate_dataset(args.data_dir / f"al298-model-{model.settings_hash()[:8]}.h5", model,
                                              progress=False)
        seconds[label] = time.perf_counter() - start
    dft_snaps = _snapshots(gpaw_path)
    stores = {label: _snapshots(path) for label, path in model_paths.items()}
    rows = {label: compare(snaps, dft_snaps) for label, snaps in stores.items()}
    rows.update({f"{label}, GPAW re-broadened to 0.25 eV": compare(snaps, dft_snaps, rebroaden=True)
                 for label, snaps in stores.items()})
    extra = max(row["gpaw_extra_broadening_ev"] for row in rows.values())
    dos_figure({**{label: (snaps, 0.0) for label, snaps in stores.items()},
                "GPAW (PBE, PW 300 eV, 2x2x4 k), 0.1 eV": (dft_snaps, 0.0),
                "GPAW re-broadened to 0.25 eV": (dft_snaps, extra)}, args.out / "dos_overlay.png")
    result: dict[str, Any] = {"gpaw_store": str(gpaw_path), "model_stores": {k: str(v) for k, v in model_paths.items()},
                              "comparison": rows, "seconds": seconds, "load_average": os.getloadavg()}
    with open_store(gpaw_path) as store:
        result["gpaw_self_check"] = store.attrs.get("self_check")
        result["gpaw_timings_s"] = store.attrs.get("timings_s")
    if args.naswot:
        result["naswot"] = {label: naswot_tau(path, args.out / f"naswot-{i}", args.naswot)
                            for i, (label, path) in enumerate({**model_paths, "gpaw": gpaw_path}.items())}
    if args.ranking:
        own = next(iter(model_paths))
        result["ranking"] = {label: strategy_ranking(path, args.out / f"ranking-{i}", args.ranking)
                             for i, (label, path) in enumerate({"gpaw": gpaw_path, own: model_paths[own]}.items())}
    print(_table(rows))
    print(f"figure: {args.out / 'dos_overlay.png'}; GPAW self-check (worst): {result['gpaw_self_check']}")
    if args.naswot:
        for label, tau in result["naswot"].items():
            print(f"NASWOT/error Kendall tau on {label}: {tau}")
    if args.ranking:
        print(_ranking_table(result["ranking"]))
    args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
