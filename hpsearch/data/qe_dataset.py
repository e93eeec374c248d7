"""The embedded default dataset: hot beryllium with Kohn-Sham DFT LDOS (Quantum ESPRESSO).

Why this engine is the default: a surrogate search can only rank architectures on data where
the architecture matters. On the stores of the model and GPAW engines every network ties ridge
regression (README: "Which data can tell networks apart?"); on MALA's real Quantum ESPRESSO Be2
data networks beat it several-fold. This engine makes data the way MALA's were made, in minutes:

1. atomic configurations from Langevin molecular dynamics of Be in MALA's 2-atom hcp cell at the
   paper's 1.896 g/cc in LAMMPS, with a DFT-fitted SNAP potential (:mod:`hpsearch.data._be_md`),
   at 1000 K by default: in so small a cell the two atoms then wander far from their sites (rms
   1.3 Angstrom), giving configurations as varied as MALA's own Be2 data (0.5-0.75 Angstrom);
2. each configuration's Kohn-Sham LDOS from Quantum ESPRESSO (PBE, ultrasoft pseudopotential
   made by ``ld1.x``, Fermi-Dirac at the same temperature), ``pp.x`` writing the LDOS on the density's FFT grid
   (:mod:`hpsearch.data._qe`);
3. SNAP descriptors on the same grid with MALA's Be settings (rcut 4.67637 Angstrom, twojmax 10).

Each snapshot's ``reference`` holds QE's Fermi level, the occupied eigenvalue sum, the total
energy, and the self-check: the band energy recomputed from the LDOS with
:mod:`hpsearch.physics` against the eigenvalue sum (limit 1 %), and the LDOS summed over the grid
against the eigenvalue DOS broadened the same way (the LDOS counts every Kohn-Sham state once:
limit 1 % of the electrons, over the window up to the Fermi level).

Example::

    from hpsearch.data.qe_dataset import QeSettings, generate_qe_dataset
    generate_qe_dataset("be-small.h5", QeSettings.small())
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hpsearch.data import _be_md, _qe
from hpsearch.data._al_progress import Reporter
from hpsearch.data.store import Snapshot, write_store
from hpsearch.errors import DataError

__all__ = ["QE_GENERATOR_VERSION", "QeSettings", "default_qe_store_path", "generate_qe_dataset", "qe_self_check"]

logger = logging.getLogger(__name__)

#: Bumped whenever the generated numbers change for the same settings (part of the settings hash).
QE_GENERATOR_VERSION = "be-qe-1"
#: Self-check limits (relative): band energy from the LDOS vs eigenvalue sum; LDOS vs eigenvalue DOS.
BAND_ENERGY_LIMIT, DOS_LIMIT = 0.01, 0.01
#: Points of the density FFT grid per primitive hcp cell at 160 Ry (QE's choice for MALA's Be2).
_PRIMITIVE_GRID = (18, 18, 27)
#: MALA's SNAP settings for Be (its Be2 descriptors).
SNAP_OPTIONS: dict[str, Any] = {"rfac0": 0.99363, "rmin0": 0.0, "radelem": 0.5, "wj": 1.0,
                                "bzeroflag": 0, "quadraticflag": 0, "switchflag": 1}


class QeSettings(BaseModel):
    """Everything that determines a QE-generated store; its hash identifies the store.

    Defaults: 12 snapshots of MALA's 2-atom hcp Be cell (``repeats`` (1, 1, 1)) at 1000 K and
    1.896 g/cc (the paper's density), MD 2 ps apart after 2 ps (at 298 K, the paper's temperature,
    the snapshots are so alike that networks of different size tie: README, "Which data can tell
    networks apart?"); PBE, ecutwfc 40 Ry, ecutrho 160 Ry,
    an 8x8x8 k-mesh (MALA's Be2 settings), the density grid 18x18x27 (0.125 Angstrom); LDOS at 37
    energies from -5.5 eV in 0.5 eV steps, each level broadened by pp.x's kernel for Fermi-Dirac
    smearing (minus the Fermi function's derivative) of width 0.5 eV (QE's energy scale: the band
    starts near -3.2 eV, E_F is near 8.8 eV). Larger cells: ``repeats`` (the grid and k-mesh
    follow: grid x repeats, k-mesh / repeats rounded up).

    Example::

        QeSettings(n_snapshots=6, seed=2).settings_hash()[:8]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    repeats: tuple[int, int, int] = Field((1, 1, 1), description="copies of the 2-atom hcp cell along a1, a2, c")
    n_snapshots: int = Field(12, ge=1, description="number of MD snapshots")
    seed: int = Field(0, ge=0, description="seed of the MD velocities and thermostat")
    temperature_k: float = Field(1000.0, gt=0.0, description="ionic (MD) and electronic temperature; 1000 K: "
                                 "configurations varied enough that architectures differ (README)")
    density_g_per_cm3: float = Field(1.896, gt=0.0, description="mass density (paper: 1.896 g/cc)")
    equilibration_ps: float = Field(2.0, ge=0.0, description="MD time before the first snapshot")
    snapshot_interval_ps: float = Field(2.0, gt=0.0, description="MD time between snapshots")
    ecutwfc_ry: float = Field(40.0, gt=0.0, description="plane-wave cutoff of the wave functions (Ry)")
    ecutrho_ry: float = Field(160.0, gt=0.0, description="cutoff of the density (Ry); sets the grid")
    primitive_kpoint_mesh: tuple[int, int, int] = Field((8, 8, 8), description="k-mesh of the 2-atom cell")
    energy_offset_ev: float = Field(-5.5, description="first LDOS energy (QE's eigenvalue scale)")
    energy_spacing_ev: float = Field(0.5, gt=0.0, description="LDOS energy spacing")
    n_energies: int = Field(37, ge=4, description="number of LDOS energies")
    broadening_ev: float = Field(0.5, gt=0.0, description="pp.x degauss_ldos d: each level broadened by minus "
                                 "the Fermi function's derivative of width d (std pi d / sqrt(3))")
    n_bands: int | None = Field(None, ge=1, description="bands (None: enough for the window's top + 3 broadenings)")
    rcut_angstrom: float = Field(4.67637, gt=0.0, description="SNAP cutoff (MALA's Be: 4.67637 Angstrom)")
    twojmax: int = Field(10, ge=0, description="SNAP band limit (10: 91 components)")

    @model_validator(mode="after")
    def _consistent(self) -> QeSettings:
        if min(self.repeats) < 1 or min(self.primitive_kpoint_mesh) < 1:
            raise ValueError(f"repeats {self.repeats} and primitive_kpoint_mesh {self.primitive_kpoint_mesh} "
                             "must be positive integers")
        if self.energy_offset_ev > -5.0:
            raise ValueError(f"energy_offset_ev {self.energy_offset_ev} must be <= -5 eV: Be's band starts near "
                             "-3.2 eV and the window must begin a few broadenings below it")
        top = self.energy_offset_ev + (self.n_energies - 1) * self.energy_spacing_ev
        if top < 10.0:
            raise ValueError(f"the energy window ends at {top:.2f} eV, below E_F (~8.8 eV) + 1.2 eV: raise "
                             "n_energies or energy_spacing_ev")
        return self

    @classmethod
    def small(cls, **changes: Any) -> QeSettings:
        """A fast variant for tests: 2 snapshots of 2 atoms, ecutwfc 25 Ry, 4x4x4 k-points."""
        defaults = {"n_snapshots": 2, "ecutwfc_ry": 25.0, "ecutrho_ry": 100.0, "primitive_kpoint_mesh": (4, 4, 4),
                    "equilibration_ps": 0.2, "snapshot_interval_ps": 0.2}
        return cls(**{**defaults, **changes})

    def settings_hash(self) -> str:
        """SHA-256 of the generator version, the pseudopotential recipe and every setting."""
        text = f"{QE_GENERATOR_VERSION}\n{_qe.recipe_hash()}\n{self.model_dump_json()}"
        return hashlib.sha256(text.encode()).hexdigest()

    def label(self) -> str:
        """``be<T>`` (temperature in K), the stem of store and snapshot names."""
        return f"be{self.temperature_k:.0f}"

    @property
    def n_atoms(self) -> int:
        return 2 * int(np.prod(self.repeats))

    def cell_angstrom(self) -> np.ndarray:
        return _be_md.hcp_cell_angstrom(self.repeats, self.density_g_per_cm3)

    def grid(self) -> tuple[int, int, int]:
        """The density's FFT grid: 18x18x27 per primitive cell at 160 Ry, scaled with sqrt(ecutrho)."""
        scale = (self.ecutrho_ry / 160.0) ** 0.5 * (_be_md.REFERENCE_DENSITY_G_PER_CM3 / self.density_g_per_cm3) ** (1.0 / 3.0)
        return tuple(_fft_size(n * r * scale) for n, r in zip(_PRIMITIVE_GRID, self.repeats))  # type: ignore[return-value]

    def kpoint_mesh(self) -> tuple[int, int, int]:
        return tuple(max(1, -(-k // r)) for k, r in zip(self.primitive_kpoint_mesh, self.repeats))  # type: ignore[return-value]

    def energy_grid(self) -> Any:
        from hpsearch.physics import EnergyGrid

        return EnergyGrid(offset_ev=self.energy_offset_ev, spacing_ev=self.energy_spacing_ev, n=self.n_energies)

    def n_electrons(self) -> float:
        return _qe.BE_VALENCE * self.n_atoms

    def setup(self) -> _qe.QeSetup:
        """The pw.x/pp.x settings of every snapshot."""
        top = self.energy_offset_ev + (self.n_energies - 1) * self.energy_spacing_ev
        volume = abs(float(np.linalg.det(self.cell_angstrom())))
        # free-electron count from the band bottom (about -3.5 eV) to the window's top + 5 broadenings
        bands = self.n_bands or int(1.3 * _qe.free_electron_bands(volume, top + 5 * self.broadening_ev + 3.5)) + 4
        return _qe.QeSetup(
            ecutwfc_ry=self.ecutwfc_ry, ecutrho_ry=self.ecutrho_ry, kpoint_mesh=self.kpoint_mesh(), grid=self.grid(),
            n_bands=bands, temperature_k=self.temperature_k, energy_offset_ev=self.energy_offset_ev,
            energy_spacing_ev=self.energy_spacing_ev, n_energies=self.n_energies, broadening_ev=self.broadening_ev)


def _fft_size(n: float) -> int:
    """The smallest FFT-friendly size (factors 2, 3, 5) >= n."""
    size = max(1, int(np.ceil(n - 1e-9)))
    while True:
        m = size
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return size
        size += 1


def default_qe_store_path(settings: QeSettings | None = None) -> Path:
    """``$HPSEARCH_DATA_DIR/be<T>-qe-<hash8>.h5`` (``./hpsearch-data`` without the variable)."""
    settings = settings or QeSettings()
    return _data_dir() / f"{settings.label()}-qe-{settings.settings_hash()[:8]}.h5"


def _data_dir() -> Path:
    return Path(os.environ.get("HPSEARCH_DATA_DIR") or Path.cwd() / "hpsearch-data")


def qe_self_check(snapshot: Snapshot, eigenvalues_ev: Any, weights: Any, broadening_ev: float) -> dict[str, float]:
    """Band energy from the LDOS vs the eigenvalue sum; the LDOS's DOS vs the eigenvalue DOS.

    The DOS check integrates both DOS up to QE's Fermi level (hat-function physics of
    :mod:`hpsearch.physics`), so it tests what the LDOS adds up to, not the broadening.
    """
    from hpsearch.physics import band_energy_from_ldos, dos_from_ldos, number_of_electrons

    ldos = np.asarray(snapshot.ldos, dtype=np.float64)
    grid, reference = snapshot.energy_grid, snapshot.reference
    band, fermi = band_energy_from_ldos(ldos, grid, snapshot.voxel_volume_angstrom3, snapshot.n_electrons,
                                        snapshot.temperature_k)
    dos = np.asarray(dos_from_ldos(ldos, snapshot.voxel_volume_angstrom3), dtype=np.float64).reshape(-1)
    expected = _qe.summed_dos(eigenvalues_ev, weights, grid.energies, broadening_ev)
    from_ldos = float(number_of_electrons(dos, grid, reference["fermi_energy_ev"], snapshot.temperature_k))
    from_eigen = float(number_of_electrons(expected, grid, reference["fermi_energy_ev"], snapshot.temperature_k))
    return {
        "ldos_band_energy_ev": float(band), "ldos_fermi_energy_ev": float(fermi),
        "band_energy_relative_error": abs(float(band) - reference["band_energy_ev"]) / abs(reference["band_energy_ev"]),
        "ldos_electrons_at_fermi": from_ldos, "eigenvalue_dos_electrons_at_fermi": from_eigen,
        "dos_relative_error": abs(from_ldos - from_eigen) / snapshot.n_electrons,
        "electron_count_relative_error": abs(from_ldos - snapshot.n_electrons) / snapshot.n_electrons,
    }


def _solve_all(settings: QeSettings, md: _be_md.MdResult, pseudopotential: Path, reporter: Reporter,
               workers: int, scratch: Path) -> list[_qe.QeResult]:
    """DFT of every MD frame, ``workers`` serial pw.x/pp.x runs at a time, in snapshot order."""
    setup = settings.setup()
    results: dict[int, _qe.QeResult] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_qe.solve_snapshot, frame, md.cell_angstrom, setup, pseudopotential,
                               scratch / f"snapshot-{index:03d}"): index for index, frame in enumerate(md.frames)}
        reporter.step(f"DFT, Quantum ESPRESSO ({workers} at a time)", 0, len(futures))
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except BaseException:
                for pending in futures:
                    pending.cancel()
                raise
            r = results[index]
            logger.info("snapshot %d: pw.x %.1f s (%d SCF iterations), pp.x %.1f s, E_F %.3f eV", index,
                        r.seconds_scf, r.scf_iterations, r.seconds_ldos, r.fermi_energy_ev)
            reporter.step(f"DFT, Quantum ESPRESSO ({workers} at a time)", len(results), len(futures))
    return [results[index] for index in range(len(md.frames))]


def _snapshot(settings: QeSettings, md: _be_md.MdResult, index: int, dft: _qe.QeResult,
              versions: dict[str, str]) -> Snapshot:
    """Atoms, LDOS, SNAP descriptors, reference numbers and the self-check of snapshot ``index``."""
    from hpsearch._version import __version__
    from hpsearch.descriptors import SnapSettings, snap_grid

    snap_settings = SnapSettings.from_options(settings.rcut_angstrom, settings.twojmax, SNAP_OPTIONS)
    provenance = {
        "engine": "qe", "generator": __name__, "generator_version": QE_GENERATOR_VERSION,
        "hpsearch_version": __version__, "settings_hash": settings.settings_hash(), "seed": settings.seed,
        "snapshot_index": index, "md_time_ps": md.times_ps[index], "md_temperature_k": md.temperatures_k[index],
        "code_versions": versions, "dft": settings.setup().describe(), "scf_iterations": dft.scf_iterations,
        "seconds_scf": dft.seconds_scf, "seconds_ldos": dft.seconds_ldos,
        "kpoint_weights": dft.kpoint_weights, "eigenvalues_ev": dft.eigenvalues_ev,
    }
    snapshot = Snapshot(
        name=f"{settings.label()}-qe-seed{settings.seed}-{index:03d}", numbers=np.full(settings.n_atoms, 4, dtype=np.int64),
        positions_angstrom=md.frames[index], cell_angstrom=md.cell_angstrom, pbc=np.ones(3, dtype=bool),
        descriptors=None, ldos=dft.ldos.astype(np.float32), energy_grid=settings.energy_grid(),
        temperature_k=settings.temperature_k, n_electrons=settings.n_electrons(),
        descriptor_settings={"kind": "snap", **snap_settings.model_dump()}, provenance=provenance,
        reference={"fermi_energy_ev": dft.fermi_energy_ev, "band_energy_ev": dft.band_energy_ev,
                   "total_energy_ev": dft.total_energy_ev, "lowest_level_ev": dft.lowest_level_ev})
    checks = qe_self_check(snapshot, dft.eigenvalues_ev, dft.kpoint_weights, settings.broadening_ev)
    if checks["band_energy_relative_error"] > BAND_ENERGY_LIMIT or checks["dos_relative_error"] > DOS_LIMIT:
        logger.warning("%s fails the self-check (band energy %.3g, LDOS vs eigenvalue DOS %.3g relative error)",
                       snapshot.name, checks["band_energy_relative_error"], checks["dos_relative_error"])
    descriptors = snap_grid(snapshot.to_atoms(), settings.grid(), settings.rcut_angstrom, settings.twojmax,
                            **SNAP_OPTIONS)
    fields = {key: getattr(snapshot, key) for key in Snapshot.__dataclass_fields__}
    return Snapshot(**{**fields, "descriptors": descriptors, "reference": {**snapshot.reference, **checks}})


def _worst_checks(snapshots: list[Snapshot]) -> dict[str, float]:
    return {
        "band_energy_relative_error": max(s.reference["band_energy_relative_error"] for s in snapshots),
        "dos_relative_error": max(s.reference["dos_relative_error"] for s in snapshots),
        "electron_count_relative_error": max(s.reference["electron_count_relative_error"] for s in snapshots),
        "band_energy_error_mev_per_atom": max(
            1000.0 * abs(s.reference["ldos_band_energy_ev"] - s.reference["band_energy_ev"]) / s.n_atoms
            for s in snapshots),
        "band_energy_limit": BAND_ENERGY_LIMIT, "dos_limit": DOS_LIMIT,
    }


def _default_workers(n_snapshots: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, n_snapshots))


def generate_qe_dataset(path: str | Path, settings: QeSettings | None = None, progress: bool = True,
                        overwrite: bool = False, workers: int | None = None) -> Path:
    """Generate the QE store at ``path`` (reused when it holds the same settings hash).

    ``workers`` snapshots run at once, one process each (default: one per core). Raises
    ImportError naming ``make qe`` before any work when Quantum ESPRESSO is missing.
    """
    from hpsearch.data.generate import reuse_or_refuse

    settings = settings or QeSettings()
    path = Path(path)
    if reuse_or_refuse(path, settings.settings_hash(), overwrite):
        return path
    _qe.find_executables()
    versions = {"quantum_espresso": _qe.qe_version(), "pseudopotential_recipe": _qe.recipe_hash()}
    workers = workers or _default_workers(settings.n_snapshots)
    pseudopotential = _qe.ensure_pseudopotential(_data_dir() / "pseudo")
    start = time.perf_counter()
    with Reporter(progress, settings.n_snapshots) as reporter:
        reporter.step("molecular dynamics", 0, settings.n_snapshots)
        md = _be_md.run_md(settings.repeats, settings.density_g_per_cm3, settings.temperature_k,
                           settings.n_snapshots, settings.equilibration_ps, settings.snapshot_interval_ps,
                           settings.seed, on_snapshot=lambda i: reporter.step(
                               "molecular dynamics", i + 1, settings.n_snapshots))
        seconds_md = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".qe-", dir=path.parent) as scratch:
            results = _solve_all(settings, md, pseudopotential, reporter, workers, Path(scratch))
        seconds_dft = time.perf_counter() - start - seconds_md
        snapshots = []
        for index, dft in enumerate(results):
            reporter.step("SNAP descriptors", index, len(results))
            snapshots.append(_snapshot(settings, md, index, dft, versions))
            reporter.snapshot_done()
        attrs = {"engine": "qe", "generator": __name__, "generator_version": QE_GENERATOR_VERSION,
                 "settings_hash": settings.settings_hash(), "settings": settings.model_dump(mode="json"),
                 "md_diagnostics": md.diagnostics, "code_versions": versions, "dft": settings.setup().describe(),
                 "pseudopotential_sha256": hashlib.sha256(pseudopotential.read_bytes()).hexdigest(),
                 "self_check": _worst_checks(snapshots),
                 "timings_s": {"md": seconds_md, "dft_wall": seconds_dft, "workers": workers,
                               "pw_sum": sum(r.seconds_scf for r in results),
                               "pp_sum": sum(r.seconds_ldos for r in results),
                               "total": time.perf_counter() - start, "load_average_end": list(os.getloadavg())}}
        write_store(path, snapshots, attrs=attrs, overwrite=True)
    worst = attrs["self_check"]
    logger.info("generated %d QE snapshots in %.1f s (md %.1f s, DFT %.1f s with %d at a time) -> %s; worst "
                "self-check: band energy %.3g, LDOS vs eigenvalue DOS %.3g", settings.n_snapshots,
                time.perf_counter() - start, seconds_md, seconds_dft, workers, path,
                worst["band_energy_relative_error"], worst["dos_relative_error"])
    if worst["band_energy_relative_error"] > BAND_ENERGY_LIMIT or worst["dos_relative_error"] > DOS_LIMIT:
        logger.warning("the store fails its self-check (limits: band energy %.0f %%, DOS %.0f %%): see each "
                       "snapshot's reference in `hpsearch data info`", 100 * BAND_ENERGY_LIMIT, 100 * DOS_LIMIT)
    if not snapshots:
        raise DataError("no snapshots were generated")
    return path
