"""Kohn-Sham DFT of one aluminium configuration with GPAW, and its LDOS on the store's grid.

GPAW (plane-wave mode, PBE, Fermi-Dirac occupations at the electronic temperature) is imported
lazily: the core package never needs it. Install it with ``make dft`` (or ``pip install
'hpsearch[dft]'`` with ``CC=g++`` after the system libraries libxc, OpenBLAS and FFTW).

The LDOS is built from the pseudo wave functions of every band and irreducible k-point,

    LDOS(r, E) = sum_nk 2 w_k |psi~_nk(r)|^2 / N_nk * g_sigma(E - e_nk)   (states/eV/Angstrom^3),

sampled at the store's grid points (GPAW runs on exactly that grid, ``gpts``), where ``N_nk``
is the grid sum of ``|psi~_nk|^2 dV``: each state is normalised to one, so the DOS counts the
electrons exactly. What that neglects near the cores: the PAW augmentation inside the atomic
spheres (about 1 Angstrom for Al). The true all-electron density there is
``|psi~|^2 + sum_ij <p_i|psi~>(phi_i phi_j - phi~_i phi~_j) <p_j|psi~>``; its integral is the
missing or surplus norm (a few per cent per state), which the normalisation spreads over the
whole state instead of putting it inside the spheres, and the nodal shape of the 3s/3p
all-electron waves near the nucleus is replaced by the smooth pseudo wave. The frozen 1s2s2p
core electrons are not in the LDOS at all (as in the model engine and pseudopotential DFT data).
"""

from __future__ import annotations

import importlib.metadata
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpsearch.data import _epm
from hpsearch.errors import HpsearchError
from hpsearch.physics import KB_EV_PER_K

__all__ = ["DftResult", "DftSetup", "GpawMissingError", "gpaw_versions", "import_gpaw", "solve_dft"]

INSTALL_HINT = ("run `make dft` in the hpsearch checkout (it installs libxc-dev, libopenblas-dev and "
                "libfftw3-dev with apt, then `CC=g++ pip install gpaw gpaw-data`), or do those steps by hand")


class GpawMissingError(HpsearchError, ImportError):
    """GPAW cannot be imported: an ImportError for Python callers, a one-line error in the CLI."""


def import_gpaw() -> Any:
    """The ``gpaw`` module, or a GpawMissingError (an ImportError) that says how to install it."""
    try:
        import gpaw
    except ImportError as exc:
        raise GpawMissingError(f"the gpaw engine needs GPAW, which cannot be imported here ({exc}): {INSTALL_HINT}") from exc
    return gpaw


def gpaw_versions() -> dict[str, str]:
    """Versions of GPAW, its PAW datasets, ASE, NumPy and libxc (stored as provenance)."""
    gpaw = import_gpaw()
    versions = {"gpaw": str(gpaw.__version__)}
    for package in ("gpaw-data", "ase", "numpy", "scipy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        import _gpaw

        versions["libxc"] = str(getattr(_gpaw, "libxc_version", "unknown"))
    except ImportError:
        versions["libxc"] = "unknown"
    return versions


@dataclass(frozen=True)
class DftSetup:
    """The DFT settings of one run (everything GPAW is told, plus the LDOS window).

    Example::

        DftSetup(cutoff_ev=300.0, kpoint_mesh=(2, 2, 4), grid_shape=(24, 24, 14),
                 energies_ev=np.arange(140) * 0.1 - 5.0, sigma_ev=0.1, temperature_k=298.0,
                 n_bands=42, n_converged_bands=38)
    """

    cutoff_ev: float
    kpoint_mesh: tuple[int, int, int]
    grid_shape: tuple[int, int, int]
    energies_ev: np.ndarray
    sigma_ev: float
    temperature_k: float
    n_bands: int
    n_converged_bands: int
    xc: str = "PBE"
    eigenstates_ev2_per_electron: float = 1e-6
    extra: dict[str, Any] = field(default_factory=dict)

    def smearing_width_ev(self) -> float:
        """Fermi-Dirac width k_B T of the electronic temperature (eV)."""
        return KB_EV_PER_K * self.temperature_k

    def describe(self) -> dict[str, Any]:
        """The settings as GPAW sees them (stored in the snapshot provenance)."""
        return {
            "code": "GPAW", "mode": "plane waves", "plane_wave_cutoff_ev": self.cutoff_ev, "xc": self.xc,
            "kpoint_mesh": list(self.kpoint_mesh), "kpoint_reduction": "time reversal (and point group when any)",
            "occupations": "Fermi-Dirac", "smearing_width_ev": self.smearing_width_ev(),
            "gpts": list(self.grid_shape), "n_bands": self.n_bands, "n_converged_bands": self.n_converged_bands,
            "convergence": {"eigenstates_ev2_per_electron": self.eigenstates_ev2_per_electron,
                            "energy_ev_per_electron": 5e-4, "density_electrons_per_electron": 1e-4},
            "setups": "PAW (gpaw-data)", "spin": "paired", "ldos_broadening_ev": self.sigma_ev,
            "ldos": "pseudo wave functions, each state normalised to one on the grid (augmentation neglected)",
        }


@dataclass(frozen=True)
class DftResult:
    """LDOS of one configuration and GPAW's reference numbers (eV; LDOS in states/eV/Angstrom^3)."""

    ldos: np.ndarray  # (nx, ny, nz, n_e) float64
    fermi_energy_ev: float
    band_energy_ev: float
    n_electrons: float
    lowest_level_ev: float
    gpaw_fermi_energy_ev: float
    total_energy_ev: float
    n_kpoints: int
    n_bands_in_ldos: int
    scf_iterations: int
    mean_pseudo_norm: float
    seconds_scf: float
    seconds_ldos: float
    cpu_seconds: float = 0.0  # CPU time of this process for the run and the LDOS
    kpoint_weights: list[float] = field(default_factory=list)  # irreducible k-points, sum 1
    eigenvalues_ev: list[list[float]] = field(default_factory=list)  # per k-point, the levels in the LDOS


def _calculator(setup: DftSetup) -> Any:
    gpaw = import_gpaw()
    return gpaw.GPAW(
        mode=gpaw.PW(setup.cutoff_ev), xc=setup.xc, kpts={"size": setup.kpoint_mesh, "gamma": False},
        occupations=gpaw.FermiDirac(setup.smearing_width_ev()), gpts=setup.grid_shape, nbands=setup.n_bands,
        convergence={"bands": setup.n_converged_bands, "eigenstates": setup.eigenstates_ev2_per_electron},
        txt=None)


def solve_dft(positions_angstrom: np.ndarray, cell_angstrom: np.ndarray, setup: DftSetup,
              n_electrons: float) -> DftResult:
    """Self-consistent GPAW run for Al atoms, then the LDOS on ``setup.grid_shape``.

    Raises DataError when the converged bands do not reach 5 broadenings above the window's top
    at every k-point (raise ``n_bands``) or the Fermi level or band bottom falls outside the window.
    """
    from ase import Atoms

    from hpsearch.errors import DataError

    start, cpu_start = time.perf_counter(), time.process_time()
    atoms = Atoms(numbers=np.full(len(positions_angstrom), 13), positions=positions_angstrom, cell=cell_angstrom,
                  pbc=True)
    calc = _calculator(setup)
    atoms.calc = calc
    total_energy = float(atoms.get_potential_energy())
    seconds_scf = time.perf_counter() - start
    weights = np.asarray(calc.get_k_point_weights(), dtype=np.float64)
    top = float(setup.energies_ev[-1]) + 5.0 * setup.sigma_ev
    kept: list[_epm.Bands] = []
    for k, weight in enumerate(weights):
        levels = np.asarray(calc.get_eigenvalues(kpt=k, spin=0), dtype=np.float64)[: setup.n_converged_bands]
        if levels[-1] < top:
            raise DataError(f"at k-point {k} the highest converged band is at {levels[-1]:.2f} eV, below the "
                            f"window top + 5 broadenings ({top:.2f} eV): raise n_bands "
                            f"(now {setup.n_bands}) or lower n_energies")
        kept.append(_epm.Bands(np.zeros(3), float(weight), levels[levels <= top], np.zeros((0, 3), int),
                               np.zeros((0, 0))))
    fermi = _epm.eigenvalue_fermi_energy(kept, n_electrons, setup.temperature_k)
    band_energy, count = _epm.eigenvalue_band_energy(kept, fermi, setup.temperature_k)
    lowest = float(min(b.energies_ev[0] for b in kept))
    _check_window(setup, lowest, fermi)
    middle = time.perf_counter()
    ldos, norm = _ldos(calc, kept, setup, abs(float(np.linalg.det(cell_angstrom))))
    return DftResult(
        ldos=ldos, fermi_energy_ev=fermi, band_energy_ev=band_energy, n_electrons=count, lowest_level_ev=lowest,
        gpaw_fermi_energy_ev=float(calc.get_fermi_level()), total_energy_ev=total_energy, n_kpoints=len(weights),
        n_bands_in_ldos=max(len(b.energies_ev) for b in kept), scf_iterations=int(calc.get_number_of_iterations()),
        mean_pseudo_norm=norm, seconds_scf=seconds_scf, seconds_ldos=time.perf_counter() - middle,
        cpu_seconds=time.process_time() - cpu_start,
        kpoint_weights=[b.weight for b in kept], eigenvalues_ev=[b.energies_ev.tolist() for b in kept])


def _check_window(setup: DftSetup, lowest_ev: float, fermi_ev: float) -> None:
    """The window must hold the band bottom (4 broadenings inside) and E_F + 0.5 eV + 4 broadenings."""
    from hpsearch.errors import DataError

    first, last = float(setup.energies_ev[0]), float(setup.energies_ev[-1])
    if lowest_ev - 4.0 * setup.sigma_ev < first:
        raise DataError(f"the lowest level ({lowest_ev:.2f} eV) lies less than 4 broadenings above the window start "
                        f"({first:.2f} eV): use energy_offset_ev <= {lowest_ev - 4.0 * setup.sigma_ev - 0.5:.2f}")
    needed = fermi_ev + 0.5 + 4.0 * setup.sigma_ev
    if last < needed:
        raise DataError(f"the energy window ends at {last:.2f} eV, below E_F + 0.5 eV + 4 broadenings = "
                        f"{needed:.2f} eV: raise n_energies (now {len(setup.energies_ev)})")


def _ldos(calc: Any, kept: list[_epm.Bands], setup: DftSetup, volume_angstrom3: float) -> tuple[np.ndarray, float]:
    """sum_nk 2 w_k |psi~_nk|^2 / N_nk g(E - e_nk) on the grid, and the mean pseudo norm N_nk."""
    from hpsearch.errors import DataError

    n_points = int(np.prod(setup.grid_shape))
    voxel = volume_angstrom3 / n_points
    ldos = np.zeros((n_points, len(setup.energies_ev)), dtype=np.float64)
    norms: list[float] = []
    for k, bands in enumerate(kept):
        density = np.empty((n_points, len(bands.energies_ev)), dtype=np.float64)
        for n in range(len(bands.energies_ev)):
            psi = np.asarray(calc.get_pseudo_wave_function(band=n, kpt=k, spin=0))
            if psi.shape != tuple(setup.grid_shape):
                raise DataError(f"GPAW's grid {psi.shape} differs from the store grid {setup.grid_shape}")
            values = (psi.real**2 + psi.imag**2).ravel()
            norm = float(values.sum() * voxel)
            norms.append(norm)
            density[:, n] = values / norm
        weights = _epm.gaussian_weights(setup.energies_ev, bands.energies_ev, setup.sigma_ev)
        ldos += (_epm.SPIN_FACTOR * bands.weight) * (density @ weights)
    return ldos.reshape(*setup.grid_shape, len(setup.energies_ev)), float(np.mean(norms))


def free_electron_bands(volume_angstrom3: float, kinetic_ev: float) -> int:
    """Plane-wave states per spin below ``kinetic_ev`` above the band bottom (free electrons)."""
    k_top = math.sqrt(2.0 * max(kinetic_ev, 0.5) / _epm.HARTREE_EV) / _epm.BOHR_ANGSTROM
    return int(math.ceil(volume_angstrom3 * k_top**3 / (6.0 * math.pi**2)))
