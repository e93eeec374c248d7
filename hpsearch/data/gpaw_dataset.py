"""The embedded aluminium dataset with Kohn-Sham DFT (GPAW) in place of the model electrons.

Same atoms, same store: the configurations come from the same LAMMPS molecular dynamics as the
model engine (:mod:`hpsearch.data._al_md`, same seed and protocol, hence the same positions for
the same MD settings), each is solved with GPAW (plane waves, PBE, Fermi-Dirac at the ionic
temperature, :mod:`hpsearch.data._gpaw`), the LDOS is built from the pseudo wave functions on the
store's grid, and SNAP descriptors are computed as for the model engine. The store has the same
format; its attributes name the engine, the code versions, the DFT settings and the worst
self-check (band energy from the LDOS against the occupied eigenvalue sum; electrons at the
Fermi level), and each snapshot's ``reference`` holds its own check as for the model engine.

Energies are GPAW's eigenvalues (zero: the average electrostatic potential), so the band starts
near -3.6 eV and E_F is near 7.2 eV for Al at 2.699 g/cc; the default window is -5 to 8.9 eV.
Snapshots run in parallel worker processes (one OpenMP/BLAS thread each).

Example::

    from hpsearch.data.generate import generate_dataset
    generate_dataset("al-dft.h5", engine="gpaw")              # 8 x 16 atoms, GpawSettings()
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hpsearch import _env
from hpsearch.data import _al_md, _epm, _gpaw
from hpsearch.data._al_progress import Reporter
from hpsearch.data.store import Snapshot, write_store

__all__ = ["GPAW_GENERATOR_VERSION", "GpawSettings", "default_gpaw_store_path", "generate_gpaw_dataset"]

logger = logging.getLogger(__name__)

#: Bumped whenever the generated numbers change for the same settings (part of the settings hash).
GPAW_GENERATOR_VERSION = "al298-gpaw-1"
#: Self-check limits (relative): band energy from the LDOS vs eigenvalue sum, electrons at E_F.
BAND_ENERGY_LIMIT, ELECTRON_LIMIT = 0.01, 0.005


class GpawSettings(BaseModel):
    """Everything that determines a GPAW-generated store; its hash identifies the store.

    Defaults (measured in the README): 8 snapshots of 16 atoms (2x2x1 cubic fcc cells), the
    MD protocol of the model engine, a 24x24x14 grid (0.34, 0.34, 0.29 Angstrom; 12 points cannot
    hold the 300 eV plane waves along the short axis), PW 300 eV, PBE, a 2x2x4
    k-mesh (k-point length 16 Angstrom), 140 energies from -5 eV in 0.1 eV steps with 0.1 eV
    Gaussian broadening (with only 8 irreducible k-points, 0.25 eV broadening puts the electron
    count at E_F 1.3 % off, 0.15 eV 0.6 %, 0.1 eV 0.26 %; limit 0.5 %). ``n_bands`` None: the free-electron count up to the window's top plus
    5 broadenings (from the window's start + 4 broadenings), plus 10 % and 4.

    Example::

        GpawSettings.small().settings_hash()[:8]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_atoms: int = Field(16, ge=4, description="atoms per snapshot, a multiple of 4 (cubic fcc cells)")
    n_snapshots: int = Field(8, ge=1, description="number of MD snapshots")
    grid: tuple[int, int, int] = Field((24, 24, 14), description="real-space grid (nx, ny, nz), GPAW's gpts")
    seed: int = Field(0, ge=0, description="seed of the MD velocities and thermostat")
    temperature_k: float = Field(298.0, gt=0.0, description="ionic (MD) and electronic temperature")
    density_g_per_cm3: float = Field(2.699, gt=0.0, description="mass density of the fcc cell")
    equilibration_ps: float = Field(5.0, ge=0.0, description="MD time before the first snapshot")
    snapshot_interval_ps: float = Field(2.0, gt=0.0, description="MD time between snapshots")
    plane_wave_cutoff_ev: float = Field(300.0, gt=0.0, description="GPAW plane-wave cutoff")
    kpoint_length_angstrom: float = Field(16.0, gt=0.0, description="k mesh n_i = round(length / |a_i|)")
    xc: str = Field("PBE", description="exchange-correlation functional (a GPAW name)")
    energy_offset_ev: float = Field(-5.0, description="first LDOS energy (GPAW's eigenvalue scale)")
    energy_spacing_ev: float = Field(0.1, gt=0.0, description="LDOS energy spacing")
    n_energies: int = Field(140, ge=16, description="number of LDOS energies")
    broadening_ev: float = Field(0.1, gt=0.0, description="Gaussian broadening sigma of each level")
    n_bands: int | None = Field(None, ge=1, description="bands converged by GPAW (None: automatic)")
    eigenstates_ev2_per_electron: float = Field(1e-6, gt=0.0, description="GPAW eigenstate convergence")
    rcut_angstrom: float = Field(4.67637, gt=0.0, description="SNAP cutoff (paper: 4.676 Angstrom)")
    twojmax: int = Field(10, ge=0, description="SNAP band limit (paper: 10, 91 components)")

    @model_validator(mode="after")
    def _consistent(self) -> GpawSettings:
        _al_md.supercell_repeats(self.n_atoms)
        if min(self.grid) < 1:
            raise ValueError(f"grid must be three positive integers, got {self.grid}")
        minimum = _epm.minimum_grid(self.cell_angstrom(), self.plane_wave_cutoff_ev)
        if any(n < m for n, m in zip(self.grid, minimum)):
            raise ValueError(f"grid {self.grid} cannot hold the {self.plane_wave_cutoff_ev} eV plane waves of this "
                             f"cell: use at least {minimum} or lower plane_wave_cutoff_ev")
        return self

    @classmethod
    def small(cls, **changes: Any) -> GpawSettings:
        """A fast variant for tests: 2 snapshots of 4 atoms, 12^3 grid, PW 200 eV, 4x4x4 k-points.

        Few levels lie near E_F in so small a cell: the broadened electron count at E_F misses by
        6 % with 2x2x2 k-points (0.25 eV broadening), and with 4x4x4 by 0.57 % at 0.1 eV and
        0.23 % at 0.05 eV broadening (used here, on a 0.05 eV grid).
        """
        defaults = {"n_atoms": 4, "n_snapshots": 2, "grid": (12, 12, 12), "plane_wave_cutoff_ev": 200.0,
                    "kpoint_length_angstrom": 16.0, "energy_spacing_ev": 0.05, "broadening_ev": 0.05,
                    "n_energies": 280, "equilibration_ps": 1.0, "snapshot_interval_ps": 1.0}
        return cls(**{**defaults, **changes})

    def settings_hash(self) -> str:
        """SHA-256 of the generator version and every setting (identifies a store's content)."""
        return hashlib.sha256(f"{GPAW_GENERATOR_VERSION}\n{self.model_dump_json()}".encode()).hexdigest()

    def cell_angstrom(self) -> np.ndarray:
        """Cubic supercell (rows are cell vectors, Angstrom)."""
        lattice = _al_md.lattice_constant_angstrom(self.density_g_per_cm3)
        return np.diag(np.asarray(_al_md.supercell_repeats(self.n_atoms), dtype=np.float64) * lattice)

    def kpoint_mesh(self) -> tuple[int, int, int]:
        """Monkhorst-Pack mesh ``max(1, round(kpoint_length / |a_i|))``."""
        lengths = np.linalg.norm(self.cell_angstrom(), axis=1)
        return tuple(max(1, int(round(self.kpoint_length_angstrom / v))) for v in lengths)  # type: ignore[return-value]

    def energy_grid(self) -> Any:
        """The LDOS energy grid (GPAW's eigenvalue scale, eV)."""
        from hpsearch.physics import EnergyGrid

        return EnergyGrid(offset_ev=self.energy_offset_ev, spacing_ev=self.energy_spacing_ev, n=self.n_energies)

    def n_electrons(self) -> float:
        """Valence electrons per snapshot (3 per Al atom, the PAW valence of Al)."""
        return 3.0 * self.n_atoms

    def dft_setup(self) -> _gpaw.DftSetup:
        """The GPAW run of every snapshot."""
        energies = self.energy_grid().energies
        top = float(energies[-1]) + 5.0 * self.broadening_ev
        volume = abs(float(np.linalg.det(self.cell_angstrom())))
        converged = self.n_bands or int(1.1 * _gpaw.free_electron_bands(
            volume, top - (self.energy_offset_ev + 4.0 * self.broadening_ev))) + 4
        return _gpaw.DftSetup(
            cutoff_ev=self.plane_wave_cutoff_ev, kpoint_mesh=self.kpoint_mesh(), grid_shape=self.grid,
            energies_ev=energies, sigma_ev=self.broadening_ev, temperature_k=self.temperature_k,
            n_bands=converged + max(4, converged // 10), n_converged_bands=converged, xc=self.xc,
            eigenstates_ev2_per_electron=self.eigenstates_ev2_per_electron)

    def model_settings(self, **changes: Any) -> Any:
        """The model engine's DatasetSettings with the same MD, grid and SNAP settings (same atoms)."""
        from hpsearch.data.generate import DatasetSettings

        shared = ("n_atoms", "n_snapshots", "grid", "seed", "temperature_k", "density_g_per_cm3",
                  "equilibration_ps", "snapshot_interval_ps", "rcut_angstrom", "twojmax")
        return DatasetSettings(**{**{key: getattr(self, key) for key in shared}, **changes})


def default_gpaw_store_path(settings: GpawSettings | None = None) -> Path:
    """``$HPSEARCH_DATA_DIR/al298-gpaw-<hash8>.h5`` (``./hpsearch-data`` without the variable)."""
    settings = settings or GpawSettings()
    directory = Path(os.environ.get("HPSEARCH_DATA_DIR") or Path.cwd() / "hpsearch-data")
    return directory / f"al298-gpaw-{settings.settings_hash()[:8]}.h5"


def _solve_one(positions: np.ndarray, cell: np.ndarray, settings_json: str) -> _gpaw.DftResult:
    """One snapshot's DFT in a worker process (one BLAS thread)."""
    from threadpoolctl import threadpool_limits

    settings = GpawSettings.model_validate_json(settings_json)
    with threadpool_limits(limits=1):
        return _gpaw.solve_dft(positions, cell, settings.dft_setup(), settings.n_electrons())


def _default_workers(n_snapshots: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, n_snapshots))


def _solve_all(settings: GpawSettings, md: _al_md.MdResult, reporter: Reporter, workers: int) -> list[_gpaw.DftResult]:
    """DFT of every MD frame, ``workers`` processes at a time, in snapshot order."""
    import multiprocessing

    results: dict[int, _gpaw.DftResult] = {}
    payload = settings.model_dump_json()
    with _env.scoped(_env.one_thread_per_process()), ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_solve_one, frame, md.cell_angstrom, payload): index
                   for index, frame in enumerate(md.frames)}
        reporter.step(f"DFT ({workers} processes)", 0, len(futures))
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except BaseException:
                for pending in futures:  # do not start the others after a failure (bad window, bands)
                    pending.cancel()
                raise
            logger.info("snapshot %d: GPAW %.1f s (%d SCF iterations), LDOS %.1f s, E_F %.3f eV", index,
                        results[index].seconds_scf, results[index].scf_iterations, results[index].seconds_ldos,
                        results[index].fermi_energy_ev)
            reporter.step(f"DFT ({workers} processes)", len(results), len(futures))
    return [results[index] for index in range(len(md.frames))]


def _snapshot(settings: GpawSettings, md: _al_md.MdResult, index: int, dft: _gpaw.DftResult,
              versions: dict[str, str]) -> Snapshot:
    """Atoms, LDOS, SNAP descriptors, reference numbers and the self-check of snapshot ``index``."""
    from hpsearch._version import __version__
    from hpsearch.data.generate import with_checks
    from hpsearch.descriptors import SnapSettings, snap_grid

    snap_settings = SnapSettings(rcut=settings.rcut_angstrom, twojmax=settings.twojmax)
    provenance = {
        "engine": "gpaw", "generator": __name__, "generator_version": GPAW_GENERATOR_VERSION,
        "hpsearch_version": __version__, "settings_hash": settings.settings_hash(), "seed": settings.seed,
        "snapshot_index": index, "md_time_ps": md.times_ps[index], "md_temperature_k": md.temperatures_k[index],
        "code_versions": versions, "dft": settings.dft_setup().describe(), "n_kpoints_irreducible": dft.n_kpoints,
        "n_bands_in_ldos": dft.n_bands_in_ldos, "scf_iterations": dft.scf_iterations,
        "mean_pseudo_norm": dft.mean_pseudo_norm, "seconds_scf": dft.seconds_scf, "seconds_ldos": dft.seconds_ldos,
        "kpoint_weights": dft.kpoint_weights, "eigenvalues_ev": dft.eigenvalues_ev,
    }
    snapshot = Snapshot(
        name=f"al298-gpaw-seed{settings.seed}-{index:03d}", numbers=np.full(settings.n_atoms, 13, dtype=np.int64),
        positions_angstrom=md.frames[index], cell_angstrom=md.cell_angstrom, pbc=np.ones(3, dtype=bool),
        descriptors=None, ldos=dft.ldos.astype(np.float32), energy_grid=settings.energy_grid(),
        temperature_k=settings.temperature_k, n_electrons=settings.n_electrons(),
        descriptor_settings={"kind": "snap", **snap_settings.model_dump()}, provenance=provenance,
        reference={"fermi_energy_ev": dft.fermi_energy_ev, "band_energy_ev": dft.band_energy_ev,
                   "lowest_level_ev": dft.lowest_level_ev, "gpaw_fermi_energy_ev": dft.gpaw_fermi_energy_ev,
                   "total_energy_ev": dft.total_energy_ev})
    descriptors = snap_grid(snapshot.to_atoms(), settings.grid, settings.rcut_angstrom, settings.twojmax)
    return with_checks(snapshot, descriptors, BAND_ENERGY_LIMIT, ELECTRON_LIMIT)


def _worst_checks(snapshots: list[Snapshot]) -> dict[str, float]:
    """The largest self-check errors over the snapshots, with their limits."""
    return {
        "band_energy_relative_error": max(s.reference["band_energy_relative_error"] for s in snapshots),
        "electron_count_relative_error": max(s.reference["electron_count_relative_error"] for s in snapshots),
        "band_energy_error_mev_per_atom": max(
            1000.0 * abs(s.reference["ldos_band_energy_ev"] - s.reference["band_energy_ev"]) / s.n_atoms
            for s in snapshots),
        "band_energy_limit": BAND_ENERGY_LIMIT, "electron_count_limit": ELECTRON_LIMIT,
    }


def generate_gpaw_dataset(path: str | Path, settings: GpawSettings | None = None, progress: bool = True,
                          overwrite: bool = False, workers: int | None = None) -> Path:
    """Generate the GPAW store at ``path`` (reused when it holds the same settings hash).

    ``workers`` DFT processes run at once (default: one per core, at most one per snapshot).
    Raises ImportError naming ``make dft`` before any work when GPAW is missing.
    """
    from threadpoolctl import threadpool_limits

    from hpsearch.data.generate import reuse_or_refuse

    settings = settings or GpawSettings()
    path = Path(path)
    if reuse_or_refuse(path, settings.settings_hash(), overwrite):
        return path
    versions = _gpaw.gpaw_versions()
    workers = workers or _default_workers(settings.n_snapshots)
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"), Reporter(progress, settings.n_snapshots) as reporter:
        reporter.step("molecular dynamics", 0, settings.n_snapshots)
        md = _al_md.run_md(settings.n_atoms, settings.density_g_per_cm3, settings.temperature_k,
                           settings.n_snapshots, settings.equilibration_ps, settings.snapshot_interval_ps,
                           settings.seed)
        seconds_md = time.perf_counter() - start
        results = _solve_all(settings, md, reporter, workers)
        seconds_dft = time.perf_counter() - start - seconds_md
        snapshots = []
        for index, dft in enumerate(results):
            reporter.step("SNAP descriptors", index, len(results))
            snapshots.append(_snapshot(settings, md, index, dft, versions))
            reporter.snapshot_done()
        attrs = {"engine": "gpaw", "generator": __name__, "generator_version": GPAW_GENERATOR_VERSION,
                 "settings_hash": settings.settings_hash(), "settings": settings.model_dump(mode="json"),
                 "md_diagnostics": md.diagnostics, "code_versions": versions, "dft": settings.dft_setup().describe(),
                 "self_check": _worst_checks(snapshots),
                 "timings_s": {"md": seconds_md, "dft_wall": seconds_dft, "workers": workers,
                               "dft_process_sum": sum(r.seconds_scf + r.seconds_ldos for r in results),
                               "dft_cpu_sum": sum(r.cpu_seconds for r in results),
                               "load_average_end": list(os.getloadavg())}}
        write_store(path, snapshots, attrs=attrs, overwrite=True)
    logger.info("generated %d GPAW snapshots in %.1f s (md %.1f s, DFT %.1f s on %d processes) -> %s; worst "
                "self-check: band energy %.3g, electrons %.3g", settings.n_snapshots, time.perf_counter() - start,
                seconds_md, seconds_dft, workers, path, attrs["self_check"]["band_energy_relative_error"],
                attrs["self_check"]["electron_count_relative_error"])
    return path
