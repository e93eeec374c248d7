"""The embedded default dataset: thermal fcc aluminium with a model LDOS and SNAP descriptors.

A new user has no DFT data, so the project makes its own, in minutes, that behaves like the
paper's (Al at 298 K and 2.699 g/cc, LDOS learned from SNAP descriptors):

1. atomic configurations from Langevin molecular dynamics in LAMMPS with the Girifalco-Weizer
   Morse potential for Al (:mod:`hpsearch.data._al_md`);
2. the LDOS of each configuration from a non-self-consistent plane-wave model with a screened
   empty-core pseudopotential solved by the project's own code (:mod:`hpsearch.data._epm`);
3. SNAP descriptors on the same grid (:func:`hpsearch.descriptors.snap_grid`, rcut 4.67637
   Angstrom, twojmax 10 as the paper).

``engine="gpaw"`` replaces step 2 by Kohn-Sham DFT with GPAW on the same MD atoms
(:mod:`hpsearch.data.gpaw_dataset`, optional, installed by ``make dft``). The default engine,
``"qe"``, makes another dataset: thermal hcp beryllium with Quantum ESPRESSO's Kohn-Sham LDOS
(:mod:`hpsearch.data.qe_dataset`, installed by ``make qe``), the data on which network
architectures differ (README: "Which data can tell networks apart?").

Each snapshot records the model's own Fermi level and occupied eigenvalue sum in ``reference``,
and the self-check (band energy and electron count recomputed from the LDOS with
:mod:`hpsearch.physics`) next to them. The same settings and seed give the same arrays, hence the
same store content hash; a second call with the same settings reuses the store (the settings
hash is a store attribute).

Example::

    from hpsearch.data.generate import DatasetSettings, generate_dataset
    path = generate_dataset("al-small.h5", DatasetSettings.small())
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hpsearch.data import _al_md, _epm
from hpsearch.data._al_progress import Reporter
from hpsearch.data.store import Snapshot, open_store, write_store
from hpsearch.errors import ConfigError, DataError
from hpsearch.physics import EnergyGrid, band_energy_from_ldos, dos_from_ldos, number_of_electrons

if TYPE_CHECKING:
    from hpsearch.data.gpaw_dataset import GpawSettings
    from hpsearch.data.qe_dataset import QeSettings

__all__ = ["DEFAULT_ENGINE", "ENGINES", "GENERATOR_VERSION", "DatasetSettings", "default_store_path",
           "engine_of", "ensure_dataset", "generate_dataset", "resolve_store", "self_check"]

logger = logging.getLogger(__name__)

#: Bumped whenever the generated numbers change for the same settings (part of the settings hash).
GENERATOR_VERSION = "al298-epm-3"
#: Electronic-structure engines of generate_dataset: Quantum ESPRESSO DFT of Be (the default store),
#: the built-in Al model (the small test stores) and GPAW DFT of Al.
ENGINES = ("qe", "model", "gpaw")
DEFAULT_ENGINE = "qe"
_VALENCE_AL = 3
# k-point threads: LAPACK and FFT release the GIL; more than 4 gains little for ~100 k-points.
_WORKERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class DatasetSettings(BaseModel):
    """Everything that determines the generated store; its hash names and identifies the store.

    Defaults: 12 snapshots of 32 atoms (2x2x2 cubic fcc cells) at 298 K and 2.699 g/cc, a 24^3
    grid (0.34 Angstrom), 64 energies from -1.5 eV in 0.25 eV steps with 0.25 eV Gaussian
    broadening (the whole occupied band plus 2.7 eV above E_F ~ 11.5 eV; sigma = spacing keeps the
    hat-interpolated integrals of hpsearch.physics accurate), a 60 eV plane-wave cutoff (eigenvalues
    within 0.04 eV of 200 eV) and a 6x6x6 k-mesh (k-point length 48 Angstrom: with 4x4x4 the
    electron count at the model's Fermi level is off by 0.3 %, with 6x6x6 by 0.2 %, limit 0.5 %).
    Validation errors say what to change (too coarse a grid aliases |psi|^2, too short a window
    misses occupied states).

    Example::

        DatasetSettings(n_snapshots=10, seed=3).settings_hash()[:8]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_atoms: int = Field(32, ge=4, description="atoms per snapshot, a multiple of 4 (cubic fcc cells)")
    n_snapshots: int = Field(
        12, ge=1, description="number of MD snapshots (12: 4 validate and 4 test in the benchmark, so errors "
        "average over several snapshots)")
    grid: tuple[int, int, int] = Field((24, 24, 24), description="real-space grid (nx, ny, nz)")
    seed: int = Field(0, ge=0, description="seed of the MD velocities and thermostat")
    temperature_k: float = Field(298.0, gt=0.0, description="ionic (MD) and electronic temperature")
    density_g_per_cm3: float = Field(2.699, gt=0.0, description="mass density of the fcc cell")
    equilibration_ps: float = Field(5.0, ge=0.0, description="MD time before the first snapshot")
    snapshot_interval_ps: float = Field(2.0, gt=0.0, description="MD time between snapshots")
    plane_wave_cutoff_ev: float = Field(60.0, gt=0.0, description="kinetic energy cutoff of the basis")
    kpoint_length_angstrom: float = Field(48.0, gt=0.0, description="k mesh n_i = round(length / |a_i|)")
    energy_offset_ev: float = Field(-1.5, description="first LDOS energy (eV above the mean potential)")
    energy_spacing_ev: float = Field(0.25, gt=0.0, description="LDOS energy spacing")
    n_energies: int = Field(64, ge=16, description="number of LDOS energies")
    broadening_ev: float = Field(0.25, gt=0.0, description="Gaussian broadening sigma of each level")
    rcut_angstrom: float = Field(4.67637, gt=0.0, description="SNAP cutoff (paper: 4.676 Angstrom)")
    twojmax: int = Field(10, ge=0, description="SNAP band limit (paper: 10, 91 components)")

    @field_validator("grid")
    @classmethod
    def _positive_grid(cls, grid: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(grid) < 1:
            raise ValueError(f"grid must be three positive integers, got {grid}")
        return grid

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSettings:
        _al_md.supercell_repeats(self.n_atoms)
        minimum = _epm.minimum_grid(self.cell_angstrom(), self.plane_wave_cutoff_ev)
        if any(n < m for n, m in zip(self.grid, minimum)):
            raise ValueError(f"grid {self.grid} is too coarse for the {self.plane_wave_cutoff_ev} eV basis of "
                             f"this cell (|psi|^2 would alias): use at least {minimum} or lower the cutoff")
        if self.energy_offset_ev > -0.5 - 4.0 * self.broadening_ev:
            raise ValueError(f"energy_offset_ev {self.energy_offset_ev} must lie 4 broadenings below the band "
                             f"bottom (about -0.5 eV): use <= {-0.5 - 4.0 * self.broadening_ev}")
        top, needed = self.energy_grid().energies[-1], self.free_electron_fermi_ev() + 0.5 + 4 * self.broadening_ev
        if top < needed:
            raise ValueError(f"the energy window ends at {top:.2f} eV, below E_F + 0.5 eV + 4 broadenings = "
                             f"{needed:.2f} eV: raise n_energies or energy_spacing_ev")
        return self

    @classmethod
    def small(cls, **changes: Any) -> DatasetSettings:
        """The small fixed-size variant used by tests: 4 snapshots of 8 atoms on a 16x8x8 grid."""
        return cls(**{"n_atoms": 8, "n_snapshots": 4, "grid": (16, 8, 8), **changes})

    def settings_hash(self) -> str:
        """SHA-256 of the generator version and every setting (identifies a store's content)."""
        return hashlib.sha256(f"{GENERATOR_VERSION}\n{self.model_dump_json()}".encode()).hexdigest()

    def cell_angstrom(self) -> np.ndarray:
        """Cubic supercell (rows are cell vectors, Angstrom)."""
        lattice = _al_md.lattice_constant_angstrom(self.density_g_per_cm3)
        return np.diag(np.asarray(_al_md.supercell_repeats(self.n_atoms), dtype=np.float64) * lattice)

    def kpoint_mesh(self) -> tuple[int, int, int]:
        """Monkhorst-Pack mesh ``max(1, round(kpoint_length / |a_i|))``."""
        lengths = np.linalg.norm(self.cell_angstrom(), axis=1)
        return tuple(max(1, int(round(self.kpoint_length_angstrom / v))) for v in lengths)  # type: ignore[return-value]

    def energy_grid(self) -> EnergyGrid:
        """The LDOS energy grid (eV above the model's mean potential)."""
        return EnergyGrid(offset_ev=self.energy_offset_ev, spacing_ev=self.energy_spacing_ev, n=self.n_energies)

    def n_electrons(self) -> float:
        """Valence electrons per snapshot (3 per Al atom)."""
        return float(_VALENCE_AL * self.n_atoms)

    def free_electron_fermi_ev(self) -> float:
        """Free-electron Fermi energy at this density, hbar^2 k_F^2 / 2m (about 11.7 eV for Al)."""
        density_bohr3 = self.n_electrons() / (abs(np.linalg.det(self.cell_angstrom())) / _epm.BOHR_ANGSTROM**3)
        return 0.5 * (3.0 * math.pi**2 * density_bohr3) ** (2.0 / 3.0) * _epm.HARTREE_EV


def engine_of(settings: Any) -> str:
    """The engine a settings object belongs to ("qe", "model" or "gpaw"); None gives the default."""
    if settings is None:
        return DEFAULT_ENGINE
    if isinstance(settings, DatasetSettings):
        return "model"
    kind = type(settings).__name__
    if kind == "QeSettings":
        return "qe"
    if kind == "GpawSettings":
        return "gpaw"
    raise ConfigError(f"settings of type {kind} belong to no engine: pass QeSettings, DatasetSettings or GpawSettings")


def default_settings(engine: str = DEFAULT_ENGINE) -> Any:
    """The default settings of ``engine``."""
    if engine == "qe":
        from hpsearch.data.qe_dataset import QeSettings

        return QeSettings()
    if engine == "gpaw":
        from hpsearch.data.gpaw_dataset import GpawSettings

        return GpawSettings()
    if engine == "model":
        return DatasetSettings()
    raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")


def default_store_path(settings: DatasetSettings | QeSettings | GpawSettings | None = None) -> Path:
    """Where the store of ``settings`` lives by default (None: the default engine's default store).

    ``$HPSEARCH_DATA_DIR`` (or ``./hpsearch-data``) / ``be1000-qe-<hash8>.h5`` (qe),
    ``al298-<hash8>.h5`` (model), ``al298-gpaw-<hash8>.h5`` (gpaw).
    """
    engine = engine_of(settings)
    if engine == "qe":
        from hpsearch.data.qe_dataset import default_qe_store_path

        return default_qe_store_path(settings)  # type: ignore[arg-type]
    if engine == "gpaw":
        from hpsearch.data.gpaw_dataset import default_gpaw_store_path

        return default_gpaw_store_path(settings)  # type: ignore[arg-type]
    directory = Path(os.environ.get("HPSEARCH_DATA_DIR") or Path.cwd() / "hpsearch-data")
    return directory / f"al298-{settings.settings_hash()[:8]}.h5"  # type: ignore[union-attr]


def model_description(settings: DatasetSettings) -> dict[str, Any]:
    """The MD and electronic model with parameters and references (stored as provenance)."""
    potential = _epm.EmptyCorePotential()
    return {
        "md": {
            "potential": "Morse pair potential",
            "depth_ev": _al_md.MORSE_DEPTH_EV, "alpha_per_angstrom": _al_md.MORSE_ALPHA_PER_ANGSTROM,
            "r0_angstrom": _al_md.MORSE_R0_ANGSTROM, "cutoff_angstrom": _al_md.MORSE_CUTOFF_ANGSTROM,
            "reference": _al_md.MORSE_REFERENCE, "thermostat": "Langevin",
            "damping_ps": _al_md.LANGEVIN_DAMPING_PS, "timestep_ps": _al_md.TIMESTEP_PS,
        },
        "electrons": {
            "hamiltonian": "-1/2 nabla^2 + sum of screened local pseudopotentials, non-self-consistent",
            "pseudopotential": "Ashcroft empty core, Lindhard screening with Hubbard local-field correction, "
                               f"high-q cutoff exp(-(q / ({potential.cutoff_in_fermi_wavevectors} k_F))^6)",
            "valence": potential.valence, "core_radius_angstrom": potential.core_radius_angstrom,
            "references": ["N. W. Ashcroft, Phys. Lett. 23, 48 (1966)",
                           "W. A. Harrison, Electronic Structure and the Properties of Solids (1980)"],
            "plane_wave_cutoff_ev": settings.plane_wave_cutoff_ev, "kpoint_mesh": list(settings.kpoint_mesh()),
            "broadening_ev": settings.broadening_ev, "spin_factor": _epm.SPIN_FACTOR,
            "energy_zero": "mean potential of the model (its G = 0 component is zero)",
        },
    }


def self_check(snapshot: Snapshot) -> dict[str, float]:
    """Band energy and electron count from the LDOS (hpsearch.physics) vs the model's eigenvalues.

    The band energy uses the LDOS's own self-consistent Fermi level; the electron count is the
    LDOS integrated up to the model's Fermi level (a check of normalisation and window).
    """
    if snapshot.ldos is None:
        raise DataError(f"snapshot {snapshot.name!r} has no LDOS to check (read it with store.read)")
    reference = snapshot.reference
    if "band_energy_ev" not in reference or "fermi_energy_ev" not in reference:
        raise DataError(f"snapshot {snapshot.name!r} has no model reference (band_energy_ev, fermi_energy_ev): "
                        "the self-check applies to snapshots made by generate_dataset")
    ldos = np.asarray(snapshot.ldos, dtype=np.float64)
    voxel, grid = snapshot.voxel_volume_angstrom3, snapshot.energy_grid
    band_energy, fermi = band_energy_from_ldos(ldos, grid, voxel, snapshot.n_electrons, snapshot.temperature_k)
    dos = dos_from_ldos(ldos, voxel)
    electrons = float(number_of_electrons(dos, grid, reference["fermi_energy_ev"], snapshot.temperature_k))
    return {
        "ldos_band_energy_ev": float(band_energy),
        "ldos_fermi_energy_ev": float(fermi),
        "ldos_electrons_at_model_fermi": electrons,
        "band_energy_relative_error": abs(float(band_energy) - reference["band_energy_ev"])
        / abs(reference["band_energy_ev"]),
        "electron_count_relative_error": abs(electrons - snapshot.n_electrons) / snapshot.n_electrons,
    }


def generate_dataset(path: str | Path, settings: DatasetSettings | GpawSettings | QeSettings | None = None,
                     progress: bool = True, overwrite: bool = False, engine: str | None = None) -> Path:
    """Generate the store at ``path`` (or reuse it when it holds the same settings hash).

    ``engine`` (default: the one ``settings`` belong to, else "qe"): "qe" runs Quantum ESPRESSO on
    thermal Be and takes QeSettings (:mod:`hpsearch.data.qe_dataset`; needs QE, ``make qe``);
    "model" solves the built-in Al model and takes DatasetSettings; "gpaw" runs Kohn-Sham DFT on
    the model's MD atoms and takes GpawSettings (needs GPAW, ``make dft``). A file at ``path``
    with other settings is an error unless ``overwrite``. Logs a timing line per step.
    """
    engine = engine if engine is not None else engine_of(settings)
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}: use 'qe' (Quantum ESPRESSO, "
                          "default, installed by `make qe`), 'model' (the built-in Al model) or 'gpaw' (GPAW, "
                          "installed by `make dft`)")
    if settings is not None and engine_of(settings) != engine:
        own = {"qe": "QeSettings", "model": "DatasetSettings", "gpaw": "GpawSettings"}[engine]
        raise ConfigError(f"engine {engine!r} takes {own}, not {type(settings).__name__}: pass {own}(...) or "
                          "settings=None for its defaults")
    if engine == "qe":
        from hpsearch.data.qe_dataset import generate_qe_dataset

        return generate_qe_dataset(path, settings, progress=progress, overwrite=overwrite)  # type: ignore[arg-type]
    if engine == "gpaw":
        from hpsearch.data.gpaw_dataset import generate_gpaw_dataset

        return generate_gpaw_dataset(path, settings, progress=progress, overwrite=overwrite)  # type: ignore[arg-type]
    settings = settings or DatasetSettings()
    path = Path(path)
    digest = settings.settings_hash()
    if reuse_or_refuse(path, digest, overwrite):
        return path
    from threadpoolctl import threadpool_limits

    timings = {"md": 0.0, "electrons": 0.0, "descriptors": 0.0, "write": 0.0, "diagonalisation": 0.0, "ldos": 0.0}
    start = time.perf_counter()
    # One BLAS thread per call (k-points run in parallel threads instead): the matrices are small
    # (~600), threaded LAPACK on a busy machine spins (30x slower measured), and a fixed BLAS
    # thread count keeps the bytes reproducible.
    with threadpool_limits(limits=1, user_api="blas"), Reporter(progress, settings.n_snapshots) as reporter:
        reporter.step("molecular dynamics", 0, settings.n_snapshots)
        md = _al_md.run_md(settings.n_atoms, settings.density_g_per_cm3, settings.temperature_k,
                           settings.n_snapshots, settings.equilibration_ps, settings.snapshot_interval_ps,
                           settings.seed, on_snapshot=lambda i: reporter.step(
                               "molecular dynamics", i + 1, settings.n_snapshots))
        timings["md"] = time.perf_counter() - start
        attrs = {"engine": "model", "generator": __name__, "generator_version": GENERATOR_VERSION, "settings_hash": digest,
                 "settings": settings.model_dump(mode="json"), "md_diagnostics": md.diagnostics}
        snapshots = _snapshots(settings, md, reporter, timings)
        write_store(path, snapshots, attrs=attrs, overwrite=True, reproducible=True)
    total = time.perf_counter() - start
    timings["write"] = total - timings["md"] - timings["electrons"] - timings["descriptors"]
    logger.info("generated %d snapshots in %.1f s (md %.1f s, bands and LDOS %.1f s [thread time: diagonalisation "
                "%.1f s, LDOS %.1f s], SNAP descriptors %.1f s, writing %.1f s) -> %s", settings.n_snapshots, total,
                timings["md"], timings["electrons"], timings["diagonalisation"], timings["ldos"],
                timings["descriptors"], timings["write"], path)
    return path


def reuse_or_refuse(path: Path, digest: str, overwrite: bool) -> bool:
    """True when ``path`` already holds a store with settings hash ``digest`` (reuse it).

    A file with another hash is a DataError unless ``overwrite`` (then False: write it anew).
    """
    if not path.exists():
        return False
    existing = _existing_hash(path)
    if existing == digest:
        logger.info("reusing %s: it holds the same settings (hash %s)", path, digest[:8])
        return True
    if not overwrite:
        raise DataError(f"{path} exists with other content (settings hash {str(existing)[:8]}, wanted "
                        f"{digest[:8]}): pass overwrite=True (--overwrite) or choose another path")
    return False


def _existing_hash(path: Path) -> str | None:
    """The settings hash recorded in an existing store (None when it was not generated here)."""
    try:
        with open_store(path) as store:
            return store.attrs.get("settings_hash")
    except (OSError, DataError) as exc:
        raise DataError(f"{path} exists but is not a readable snapshot store ({exc}): remove it "
                        "or choose another path") from exc


def _snapshots(settings: DatasetSettings, md: _al_md.MdResult, reporter: Reporter,
               timings: dict[str, float]) -> Iterator[Snapshot]:
    """Compute LDOS and descriptors one snapshot at a time (consumed by write_store)."""
    from hpsearch.descriptors import snap_grid

    for index, positions in enumerate(md.frames):
        name = f"al298-seed{settings.seed}-{index:03d}"
        reporter.step(f"{name}: bands and LDOS", 0, 1)
        start = time.perf_counter()
        electrons = _epm.solve_electrons(
            positions, md.cell_angstrom, potential=_epm.EmptyCorePotential(),
            cutoff_ev=settings.plane_wave_cutoff_ev, kpoint_mesh=settings.kpoint_mesh(), grid_shape=settings.grid,
            energies_ev=settings.energy_grid().energies, sigma_ev=settings.broadening_ev,
            temperature_k=settings.temperature_k, n_electrons=settings.n_electrons(), workers=_WORKERS,
            on_kpoint=lambda done, total: reporter.step(f"{name}: bands and LDOS (k-points)", done, total))
        timings["electrons"] += time.perf_counter() - start
        timings["diagonalisation"] += electrons.seconds_diagonalisation
        timings["ldos"] += electrons.seconds_ldos
        reporter.step(f"{name}: SNAP descriptors", 0, 1)
        start = time.perf_counter()
        snapshot = _snapshot_without_descriptors(settings, md, index, name, electrons)
        descriptors = snap_grid(snapshot.to_atoms(), settings.grid, settings.rcut_angstrom, settings.twojmax)
        timings["descriptors"] += time.perf_counter() - start
        yield with_checks(snapshot, descriptors)
        reporter.snapshot_done()


def _snapshot_without_descriptors(settings: DatasetSettings, md: _al_md.MdResult, index: int, name: str,
                                  electrons: _epm.ElectronicResult) -> Snapshot:
    """Atoms, LDOS, the model's reference numbers and provenance of snapshot ``index``."""
    from hpsearch._version import __version__
    from hpsearch.descriptors import SnapSettings

    snap_settings = SnapSettings(rcut=settings.rcut_angstrom, twojmax=settings.twojmax)
    provenance = {
        "generator": __name__, "generator_version": GENERATOR_VERSION, "hpsearch_version": __version__,
        "settings_hash": settings.settings_hash(), "seed": settings.seed, "snapshot_index": index,
        "md_time_ps": md.times_ps[index], "md_temperature_k": md.temperatures_k[index],
        "n_bands": electrons.n_bands, "n_kpoints_irreducible": electrons.n_kpoints,
        "mean_plane_waves": electrons.mean_plane_waves, "model": model_description(settings),
    }
    return Snapshot(
        name=name, numbers=np.full(settings.n_atoms, 13, dtype=np.int64), positions_angstrom=md.frames[index],
        cell_angstrom=md.cell_angstrom, pbc=np.ones(3, dtype=bool), descriptors=None,
        ldos=electrons.ldos.astype(np.float32), energy_grid=settings.energy_grid(),
        temperature_k=settings.temperature_k, n_electrons=settings.n_electrons(),
        descriptor_settings={"kind": "snap", **snap_settings.model_dump()}, provenance=provenance,
        reference={"fermi_energy_ev": electrons.fermi_energy_ev, "band_energy_ev": electrons.band_energy_ev,
                   "lowest_level_ev": electrons.lowest_level_ev})


def with_checks(snapshot: Snapshot, descriptors: np.ndarray, band_energy_limit: float = 0.01,
                electron_limit: float = 0.005) -> Snapshot:
    """The snapshot with descriptors and the self-check results added to ``reference``.

    A check above its limit (relative errors) is logged as a warning, not raised: the store
    records it, and `hpsearch data generate` prints the worst one.
    """
    checks = self_check(snapshot)
    if checks["band_energy_relative_error"] > band_energy_limit or checks["electron_count_relative_error"] > electron_limit:
        logger.warning("%s fails the self-check (band energy %.3g, electrons %.3g relative error): the "
                       "k-mesh or energy window may be too coarse", snapshot.name,
                       checks["band_energy_relative_error"], checks["electron_count_relative_error"])
    reference = {**snapshot.reference, **checks}
    fields = {key: getattr(snapshot, key) for key in Snapshot.__dataclass_fields__}
    return Snapshot(**{**fields, "descriptors": descriptors, "reference": reference})


def _generate_child(path: str, engine: str, settings_json: str, progress: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    kind = type(default_settings(engine))
    generate_dataset(path, kind.model_validate_json(settings_json), progress=progress, engine=engine)


def ensure_dataset(settings: DatasetSettings | QeSettings | GpawSettings | None = None, path: str | Path | None = None,
                   progress: bool = True) -> Path:
    """The generated store for `settings` (None: the default engine's default; default path),
    generated in a child process if missing.

    Generation runs LAMMPS and threaded LAPACK; left in a process that trains networks next,
    their thread pools slowed training about 50x on a busy 2-core machine. A child process keeps
    them out. An existing store with the same settings is reused without starting a child.
    """
    import multiprocessing

    engine = engine_of(settings)
    settings = settings if settings is not None else default_settings(engine)
    target = Path(path) if path is not None else default_store_path(settings)
    if target.exists() and _existing_hash(target) == settings.settings_hash():
        return target
    if engine == "qe":
        from hpsearch.data._qe import find_executables

        find_executables()  # ImportError naming `make qe`, before a child starts
    logger.info("generating the dataset %s (first use; reused afterwards)", target)
    child = multiprocessing.get_context("spawn").Process(
        target=_generate_child, args=(str(target), engine, settings.model_dump_json(), progress),
        name="hpsearch-generate"
    )
    child.start()
    child.join()
    if child.exitcode != 0 or not target.exists():
        raise DataError(f"generating the dataset at {target} failed (exit code {child.exitcode}); "
                        "run `hpsearch data generate` to see why")
    return target


def resolve_store(store: str | Path, key: str = "store") -> Path:
    """A store file from `store`: a path, or 'default' / 'small' for a generated dataset.

    'default' is the default engine's store (Quantum ESPRESSO Be, ``make qe``); 'small' the model
    engine's small Al store (seconds to make; what tests use). A path that does not exist is a
    ConfigError naming the config `key` it came from.
    """
    if str(store) in ("default", "small"):
        return ensure_dataset(None if str(store) == "default" else DatasetSettings.small()).resolve()
    path = Path(store).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"{key} {str(store)!r} does not exist ({path}): give an hpsearch store (.h5), 'default' or "
            "'small' to generate one, or import MALA data with `hpsearch data import-mala`"
        )
    return path
