"""Non-self-consistent plane-wave model of valence electrons in aluminium (the generator's "DFT").

The model (atomic units inside, eV and Angstrom at the boundary):

    H = -1/2 nabla^2 + sum_atoms v(|r - R_a|),   v(q) = v_ion(q) / eps(q)

* ``v_ion``: Ashcroft's empty-core ionic pseudopotential, ``v_ion(r) = 0`` for ``r < r_c`` and
  ``-Z/r`` outside, i.e. ``v_ion(q) = -4 pi Z cos(q r_c) / q^2``, with ``Z = 3`` and the empty-core
  radius of Al ``r_c = 0.61 Angstrom`` (W. A. Harrison, *Electronic Structure and the Properties of
  Solids*, Freeman 1980; N. W. Ashcroft, Phys. Lett. 23, 48 (1966)).
* ``eps``: linear screening by the free-electron gas at the mean valence density,
  Lindhard function with the Hubbard local-field correction ``G(q) = q^2 / (2 (q^2 + k_F^2))``.
  Screening each ion linearly is what makes the model non-self-consistent yet physical: no
  iterations, but the potential is the one a metal's electrons see.
* a smooth cutoff ``exp(-(q / 2.5 k_F)^6)``: the sharp core edge gives form factors that fall only
  as 1/q^2, so eigenvalues drift with the plane-wave cutoff (band bottom -0.1, -0.4, -0.7 eV at
  40, 80, 120 eV). With the cutoff, perfect-crystal eigenvalues agree within 0.04 eV between
  60 and 200 eV. The screened form factors of perfect fcc Al are then V(111) = 0.0167 Ry and
  V(200) = 0.0589 Ry, close to the values Ashcroft fitted to the de Haas-van Alphen Fermi surface
  (0.0179 and 0.0562 Ry, Phil. Mag. 8, 2055 (1963)); the gaps at L and X are 0.32 and 1.39 eV.
  (The Appelbaum-Hamann local potential, PRB 8, 1777 (1973), is a silicon potential, Z = 4.)
* The G = 0 component of the crystal potential is set to zero: energies are measured from the
  mean potential, so the band starts near 0 eV and E_F is about 11.5 eV (free electrons: 11.66 eV).

Bands come from dense Hermitian diagonalisation of H(k) in a plane-wave basis (|k + G|^2 / 2 below a
cutoff) on a shifted Monkhorst-Pack mesh reduced by time reversal; wavefunctions are put on the
real-space grid by FFT and the LDOS is ``sum_nk 2 w_k |psi_nk(r)|^2 g_sigma(E - e_nk)``
(states/eV/Angstrom^3). Limits: a local pseudopotential, linear screening, no exchange-correlation
beyond the local-field factor, no self-consistency; a stand-in with band structure, Fermi surface
and spatial locality, not DFT.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.linalg
from scipy.special import expit

from hpsearch.errors import ConfigError, DataError
from hpsearch.physics import KB_EV_PER_K

HARTREE_EV = 27.211386245988  # CODATA 2018
BOHR_ANGSTROM = 0.529177210903  # CODATA 2018
SPIN_FACTOR = 2.0


@dataclass(frozen=True)
class EmptyCorePotential:
    """Screened Ashcroft empty-core pseudopotential (parameters and their sources: module docstring).

    Example::

        v = EmptyCorePotential()
        v.form_factor_ha_bohr3(np.array([1.42]), electron_density_bohr3=0.0268)
    """

    valence: float = 3.0
    core_radius_angstrom: float = 0.61
    local_field_correction: bool = True
    cutoff_in_fermi_wavevectors: float = 2.5

    def dielectric(self, q_bohr: np.ndarray, electron_density_bohr3: float) -> np.ndarray:
        """Static dielectric function eps(q) of the electron gas (Lindhard, optional Hubbard LFC)."""
        k_fermi = (3.0 * math.pi**2 * electron_density_bohr3) ** (1.0 / 3.0)
        x = np.asarray(q_bohr, dtype=np.float64) / (2.0 * k_fermi)
        with np.errstate(divide="ignore", invalid="ignore"):
            lindhard = 0.5 + (1.0 - x**2) / (4.0 * x) * np.log(np.abs((1.0 + x) / (1.0 - x)))
        lindhard = np.where(np.abs(x - 1.0) < 1e-12, 0.5, lindhard)
        chi0 = k_fermi / math.pi**2 * lindhard  # minus the static response, spin included
        field = q_bohr**2 / (2.0 * (q_bohr**2 + k_fermi**2)) if self.local_field_correction else 0.0
        return 1.0 + 4.0 * math.pi / q_bohr**2 * (1.0 - field) * chi0

    def form_factor_ha_bohr3(self, q_bohr: np.ndarray, electron_density_bohr3: float) -> np.ndarray:
        """Screened v(q) in Hartree * bohr^3 for q > 0 (divide by the cell volume for V(G))."""
        q = np.asarray(q_bohr, dtype=np.float64)
        if np.any(q <= 0):
            raise ValueError("form factor is defined for q > 0 only; the G = 0 term is set to zero")
        r_core = self.core_radius_angstrom / BOHR_ANGSTROM
        ionic = -4.0 * math.pi * self.valence * np.cos(q * r_core) / q**2
        damping = 1.0
        if self.cutoff_in_fermi_wavevectors > 0:
            k_fermi = (3.0 * math.pi**2 * electron_density_bohr3) ** (1.0 / 3.0)
            damping = np.exp(-((q / (self.cutoff_in_fermi_wavevectors * k_fermi)) ** 6))
        return ionic * damping / self.dielectric(q, electron_density_bohr3)


@dataclass(frozen=True)
class Bands:
    """Eigenvalues (eV) and plane-wave coefficients of one k-point, with its weight."""

    k_fractional: np.ndarray
    weight: float
    energies_ev: np.ndarray
    millers: np.ndarray  # (n_pw, 3) integer plane-wave indices
    coefficients: np.ndarray  # (n_pw, n_bands), columns normalised to 1


def monkhorst_pack(mesh: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Shifted-for-even Monkhorst-Pack k-points (fractional) reduced by time reversal k ~ -k.

    Returns ``(k_points, weights)`` with weights summing to one. A pair k, -k has the same
    eigenvalues and |psi|^2 (real potential), so one of them is kept with double weight.
    """
    axes = [(np.arange(n) + 0.5) / n - 0.5 for n in mesh]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    kept: dict[tuple[int, ...], list] = {}
    scale = 4 * int(np.prod(mesh))
    for k in grid:
        key = tuple(int(round(v * scale)) % scale for v in k)
        partner = tuple((-v) % scale for v in key)
        if partner in kept:
            kept[partner][1] += 1
        else:
            kept[key] = [k, 1]
    points = np.array([value[0] for value in kept.values()])
    weights = np.array([value[1] for value in kept.values()], dtype=np.float64)
    return points, weights / weights.sum()


def max_miller(cell_angstrom: np.ndarray, cutoff_ev: float) -> np.ndarray:
    """Largest |m_i| of a plane wave k + G (|k| inside the first zone) below the cutoff."""
    k_max = math.sqrt(2.0 * cutoff_ev / HARTREE_EV) / BOHR_ANGSTROM  # 1/Angstrom
    lengths = np.linalg.norm(np.asarray(cell_angstrom, dtype=np.float64), axis=1)
    return np.floor(k_max * lengths / (2.0 * math.pi) + 0.5).astype(int)


def minimum_grid(cell_angstrom: np.ndarray, cutoff_ev: float) -> tuple[int, int, int]:
    """Smallest real-space grid on which |psi|^2 of the basis is sampled without aliasing."""
    return tuple(int(v) for v in 2 * max_miller(cell_angstrom, cutoff_ev) + 1)  # type: ignore[return-value]


def crystal_potential(positions_angstrom: np.ndarray, cell_angstrom: np.ndarray, cutoff_ev: float,
                      potential: EmptyCorePotential, n_electrons: float) -> tuple[np.ndarray, np.ndarray]:
    """V(G) in Hartree on the box of Miller differences |m_i| <= 2 m_max,i; returns (box, m_max)."""
    cell_bohr = np.asarray(cell_angstrom, dtype=np.float64) / BOHR_ANGSTROM
    volume_bohr3 = abs(np.linalg.det(cell_bohr))
    recip = 2.0 * math.pi * np.linalg.inv(cell_bohr).T  # rows are b_i
    m_max = max_miller(cell_angstrom, cutoff_ev)
    ranges = [np.arange(-2 * m, 2 * m + 1) for m in m_max]
    millers = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    g_vectors = millers @ recip
    q = np.linalg.norm(g_vectors, axis=1)
    fractional = np.asarray(positions_angstrom, dtype=np.float64) @ np.linalg.inv(cell_angstrom)
    structure = np.exp(-2j * math.pi * (millers @ fractional.T)).sum(axis=1)
    values = np.zeros(len(q), dtype=np.complex128)
    nonzero = q > 1e-12
    density = n_electrons / volume_bohr3
    values[nonzero] = potential.form_factor_ha_bohr3(q[nonzero], density) * structure[nonzero] / volume_bohr3
    return values.reshape([len(r) for r in ranges]), m_max


def solve_k(k_fractional: np.ndarray, weight: float, cell_angstrom: np.ndarray, cutoff_ev: float,
            v_box: np.ndarray, m_max: np.ndarray, n_bands: int) -> Bands:
    """Lowest ``n_bands`` eigenpairs of H(k) = |k+G|^2/2 delta + V(G - G') (dense, LAPACK evr)."""
    cell_bohr = np.asarray(cell_angstrom, dtype=np.float64) / BOHR_ANGSTROM
    recip = 2.0 * math.pi * np.linalg.inv(cell_bohr).T
    ranges = [np.arange(-m, m + 1) for m in m_max]
    millers = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    kinetic = 0.5 * np.sum(((millers + k_fractional) @ recip) ** 2, axis=1)
    keep = kinetic <= cutoff_ev / HARTREE_EV
    millers, kinetic = millers[keep], kinetic[keep]
    if n_bands > len(kinetic):
        raise ConfigError(f"{n_bands} bands requested but the basis has {len(kinetic)} plane waves: "
                          "raise plane_wave_cutoff_ev or lower the energy window")
    diff = millers[:, None, :] - millers[None, :, :] + 2 * m_max
    hamiltonian = v_box[diff[..., 0], diff[..., 1], diff[..., 2]]
    hamiltonian[np.diag_indices_from(hamiltonian)] += kinetic
    energies, vectors = scipy.linalg.eigh(hamiltonian, subset_by_index=(0, n_bands - 1), driver="evr",
                                          overwrite_a=True, check_finite=False)
    return Bands(np.asarray(k_fractional), float(weight), energies * HARTREE_EV, millers, vectors)


def density_on_grid(bands: Bands, grid_shape: tuple[int, int, int], volume_angstrom3: float) -> np.ndarray:
    """|psi_n(r)|^2 in 1/Angstrom^3 at the grid points, shape (n_points, n_bands), x index slowest."""
    n_bands = bands.coefficients.shape[1]
    shape = np.asarray(grid_shape)
    if np.any(2 * np.abs(bands.millers).max(axis=0) >= shape):
        raise DataError(f"grid {tuple(grid_shape)} aliases |psi|^2 of this basis: use a finer grid")
    index = np.ravel_multi_index(tuple((bands.millers % shape).T), tuple(grid_shape))
    waves = np.zeros((n_bands, int(np.prod(shape))), dtype=np.complex128)
    waves[:, index] = bands.coefficients.T
    waves = scipy.fft.ifftn(waves.reshape(n_bands, *grid_shape), axes=(1, 2, 3), norm="forward", workers=1,
                            overwrite_x=True)
    density = waves.real**2
    density += waves.imag**2
    density /= volume_angstrom3
    return density.reshape(n_bands, -1).T


def gaussian_weights(energies_ev: np.ndarray, levels_ev: np.ndarray, sigma_ev: float) -> np.ndarray:
    """g_sigma(E - e_n) in 1/eV, shape (n_levels, n_energies)."""
    delta = (np.asarray(energies_ev)[None, :] - np.asarray(levels_ev)[:, None]) / sigma_ev
    return np.exp(-0.5 * delta**2) / (sigma_ev * math.sqrt(2.0 * math.pi))


def occupations(energies_ev: np.ndarray, fermi_ev: float, temperature_k: float) -> np.ndarray:
    """Fermi-Dirac occupation f(e) in [0, 1]."""
    return expit(-(np.asarray(energies_ev) - fermi_ev) / (KB_EV_PER_K * temperature_k))


def eigenvalue_fermi_energy(all_bands: list[Bands], n_electrons: float, temperature_k: float) -> float:
    """Fermi level (eV) at which sum_nk 2 w_k f(e_nk) = n_electrons (bisection to 1e-12 eV)."""
    levels = np.concatenate([b.energies_ev for b in all_bands])
    weights = np.concatenate([np.full(len(b.energies_ev), SPIN_FACTOR * b.weight) for b in all_bands])
    if weights.sum() < n_electrons:
        raise DataError(f"only {weights.sum():.1f} states computed for {n_electrons} electrons")
    low, high = levels.min() - 1.0, levels.max()
    for _ in range(200):
        middle = 0.5 * (low + high)
        if np.sum(weights * occupations(levels, middle, temperature_k)) < n_electrons:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return 0.5 * (low + high)


def eigenvalue_band_energy(all_bands: list[Bands], fermi_ev: float, temperature_k: float) -> tuple[float, float]:
    """Occupied eigenvalue sum sum_nk 2 w_k e f(e) (eV) and the electron count it holds."""
    energy = count = 0.0
    for b in all_bands:
        occupied = SPIN_FACTOR * b.weight * occupations(b.energies_ev, fermi_ev, temperature_k)
        energy += float(np.sum(occupied * b.energies_ev))
        count += float(np.sum(occupied))
    return energy, count


def bands_needed(volume_angstrom3: float, top_ev: float) -> int:
    """Free-electron count of states per spin below ``top_ev`` (plus a margin) for one k-point."""
    k_top = math.sqrt(2.0 * max(top_ev, 0.5) / HARTREE_EV) / BOHR_ANGSTROM
    return int(math.ceil(1.15 * volume_angstrom3 * k_top**3 / (6.0 * math.pi**2))) + 4


@dataclass(frozen=True)
class ElectronicResult:
    """LDOS of one configuration and the model's own reference numbers (from the eigenvalues)."""

    ldos: np.ndarray  # (nx, ny, nz, n_e) float64, states/eV/Angstrom^3
    fermi_energy_ev: float
    band_energy_ev: float
    n_electrons: float
    n_bands: int
    n_kpoints: int
    mean_plane_waves: float
    lowest_level_ev: float
    seconds_diagonalisation: float
    seconds_ldos: float


def solve_electrons(positions_angstrom: np.ndarray, cell_angstrom: np.ndarray, *, potential: EmptyCorePotential,
                    cutoff_ev: float, kpoint_mesh: tuple[int, int, int], grid_shape: tuple[int, int, int],
                    energies_ev: np.ndarray, sigma_ev: float, temperature_k: float, n_electrons: float,
                    workers: int = 1, on_kpoint: Callable[[int, int], None] | None = None) -> ElectronicResult:
    """Bands on the k mesh, LDOS on the grid, Fermi level and occupied eigenvalue sum.

    Enough bands are computed at every k-point to reach 5 broadenings above the window's top, so
    every level whose Gaussian reaches the window is included (checked, more bands if needed).
    k-points run on ``workers`` threads (LAPACK and FFT release the GIL); their contributions are
    added in k order, so the result is the same bytes for any number of workers.
    """
    volume = abs(float(np.linalg.det(cell_angstrom)))
    v_box, m_max = crystal_potential(positions_angstrom, cell_angstrom, cutoff_ev, potential, n_electrons)
    k_points, weights = monkhorst_pack(kpoint_mesh)
    top_ev = float(energies_ev[-1]) + 5.0 * sigma_ev
    n_start = bands_needed(volume, top_ev)

    def one_k(k: np.ndarray, weight: float) -> tuple[Bands, np.ndarray, float, float]:
        start = time.perf_counter()
        bands, n_bands = solve_k(k, weight, cell_angstrom, cutoff_ev, v_box, m_max, n_start), n_start
        while bands.energies_ev[-1] < top_ev:
            n_bands = int(math.ceil(1.3 * n_bands))
            bands = solve_k(k, weight, cell_angstrom, cutoff_ev, v_box, m_max, n_bands)
        middle = time.perf_counter()
        density = density_on_grid(bands, grid_shape, volume)
        part = (SPIN_FACTOR * weight) * (density @ gaussian_weights(energies_ev, bands.energies_ev, sigma_ev))
        return bands, part, middle - start, time.perf_counter() - middle

    ldos = np.zeros((int(np.prod(grid_shape)), len(energies_ev)), dtype=np.float64)
    kept: list[Bands] = []
    plane_waves: list[int] = []
    seconds = [0.0, 0.0]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for index, (bands, part, diagonalisation, projection) in enumerate(pool.map(one_k, k_points, weights)):
            ldos += part
            kept.append(Bands(bands.k_fractional, bands.weight, bands.energies_ev, bands.millers[:0],
                              bands.coefficients[:, :0]))
            plane_waves.append(len(bands.millers))
            seconds[0] += diagonalisation
            seconds[1] += projection
            if on_kpoint is not None:
                on_kpoint(index + 1, len(k_points))
    fermi = eigenvalue_fermi_energy(kept, n_electrons, temperature_k)
    band_energy, count = eigenvalue_band_energy(kept, fermi, temperature_k)
    return ElectronicResult(
        ldos=ldos.reshape(*grid_shape, len(energies_ev)), fermi_energy_ev=fermi, band_energy_ev=band_energy,
        n_electrons=count, n_bands=max(len(b.energies_ev) for b in kept), n_kpoints=len(k_points),
        mean_plane_waves=float(np.mean(plane_waves)), lowest_level_ev=float(min(b.energies_ev[0] for b in kept)),
        seconds_diagonalisation=seconds[0], seconds_ldos=seconds[1])
