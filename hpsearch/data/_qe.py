"""Kohn-Sham DFT of one snapshot with Quantum ESPRESSO: ``pw.x`` (SCF), then ``pp.x`` (the LDOS).

This is MALA's own data pipeline (its Be2 data were made this way): a plane-wave PBE calculation
with an ultrasoft pseudopotential, Fermi-Dirac occupations at the electronic temperature, then
``pp.x`` with ``plot_num = 3`` writes the LDOS at each energy of the window as a Gaussian cube
file in 1/(Ry Bohr^3), the ultrasoft augmentation charges near the nuclei included. The cubes
are read back and converted to states/eV/Angstrom^3 (:mod:`hpsearch.data.cube`); eigenvalues,
k-point weights, the Fermi level and the total energy come from ``pw.x``'s XML file.

The pseudopotential is generated on first use by ``ld1.x`` (QE's atomic code) from the recipe
below: a scalar-relativistic PBE ultrasoft (RRKJ) potential for Be with two projectors in each
of the 2s and 2p channels, a pseudised augmentation (PSQ) and a nonlinear core correction, the
same kind of potential as pslibrary's ``Be.pbe-n-rrkjus_psl.1.0.0.UPF`` that MALA's data used
(its radii are our own choice; on MALA's snapshot 0 our LDOS correlates with MALA's at 0.96-0.98
per energy and the Fermi level differs by 0.08 eV).

Quantum ESPRESSO is an external program: Debian and Ubuntu package it (``apt-get install
quantum-espresso``, what ``make qe`` runs). Each snapshot runs in its own folder with one process
and one thread (snapshots run side by side instead), and the large wave-function files are
deleted once the LDOS is read.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.errors import DataError

logger = logging.getLogger(__name__)

HARTREE_EV = 27.211386245988
RYDBERG_EV = HARTREE_EV / 2.0
KB_EV_PER_K = 8.617333262e-5
EXECUTABLES = ("pw.x", "pp.x", "ld1.x")
INSTALL_HINT = ("Quantum ESPRESSO is missing: run `make qe` (as root it runs `apt-get install -y quantum-espresso`), "
                "or install pw.x, pp.x and ld1.x (version 6.x or 7.x) on the PATH yourself")

#: ld1.x input of the Be ultrasoft pseudopotential (Rydberg atomic units; radii in Bohr).
BE_PSEUDOPOTENTIAL_RECIPE = """ &input
   title='Be',
   zed=4.0,
   rel=1,
   config='1s2 2s2 2p0',
   iswitch=3,
   dft='PBE'
 /
 &inputp
   pseudotype=3,
   file_pseudopw='{filename}',
   author='hpsearch',
   lloc=-1,
   rcloc=1.3,
   which_augfun='PSQ',
   rmatch_augfun_nc=.true.,
   nlcc=.true.,
   new_core_ps=.true.,
   rcore=0.9,
   tm=.true.
 /
4
2S  1  0  2.00  0.00  1.30  1.60  0.0
2S  1  0  0.00  1.00  1.30  1.60  0.0
2P  2  1  0.00  0.00  1.40  1.70  0.0
2P  2  1  0.00  1.00  1.40  1.70  0.0
"""
BE_VALENCE = 2.0


def find_executables() -> dict[str, str]:
    """Paths of pw.x, pp.x and ld1.x; ImportError naming ``make qe`` when one is missing."""
    found = {name: shutil.which(name) for name in EXECUTABLES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ImportError(f"{INSTALL_HINT} (not found on the PATH: {', '.join(missing)})")
    return {name: str(path) for name, path in found.items()}


def qe_version() -> str:
    """The Quantum ESPRESSO version of pw.x's banner ("6.7MaX"), or "unknown"."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            done = subprocess.run([find_executables()["pw.x"]], input="", capture_output=True, text=True,
                                  timeout=60, cwd=folder, env=_serial_env())
        for line in done.stdout.splitlines():
            if "Program PWSCF" in line:
                return line.split("PWSCF")[1].split("starts")[0].strip().lstrip("v.")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def _serial_env() -> dict[str, str]:
    """One process, one thread: OpenMP and BLAS pinned to 1 (snapshots run side by side instead)."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return env


def recipe_hash() -> str:
    """Short hash of the pseudopotential recipe (names the generated file)."""
    return hashlib.sha256(BE_PSEUDOPOTENTIAL_RECIPE.encode()).hexdigest()[:8]


def ensure_pseudopotential(folder: str | Path) -> Path:
    """The Be pseudopotential in ``folder``, generated with ld1.x on first use (then reused)."""
    folder = Path(folder)
    name = f"Be.pbe-rrkjus-hpsearch-{recipe_hash()}.UPF"
    target = folder / name
    if target.is_file():
        return target
    ld1 = find_executables()["ld1.x"]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as work:
        text = BE_PSEUDOPOTENTIAL_RECIPE.format(filename=name)
        done = subprocess.run([ld1], input=text, capture_output=True, text=True, cwd=work, timeout=600,
                              env=_serial_env())
        produced = Path(work) / name
        if done.returncode != 0 or not produced.is_file():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise DataError(f"ld1.x could not generate the Be pseudopotential (exit code {done.returncode}):\n{tail}")
        os.replace(produced, target)
    logger.info("generated the Be pseudopotential %s with ld1.x", target)
    return target


@dataclass(frozen=True)
class QeSetup:
    """The pw.x and pp.x settings of every snapshot (energies in eV, cutoffs in Ry).

    ``grid`` is the FFT grid of the density (``nr1, nr2, nr3``), the LDOS and descriptor grid.
    """

    ecutwfc_ry: float
    ecutrho_ry: float
    kpoint_mesh: tuple[int, int, int]
    grid: tuple[int, int, int]
    n_bands: int
    temperature_k: float
    energy_offset_ev: float
    energy_spacing_ev: float
    n_energies: int
    broadening_ev: float
    conv_thr_ry_per_atom: float = 1e-10
    mixing_beta: float = 0.4
    # the highest band must reach this many broadenings above the window's top (None: no check, to
    # reproduce data made with fewer bands, e.g. MALA's Be2 SCF with 4 Kohn-Sham states)
    band_margin_broadenings: float | None = 3.0

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description (stored as provenance)."""
        return {
            "code": "Quantum ESPRESSO pw.x + pp.x (plot_num 3)", "xc": "PBE",
            "pseudopotential": "ultrasoft RRKJ, generated by ld1.x (hpsearch.data._qe recipe " + recipe_hash() + ")",
            "ecutwfc_ry": self.ecutwfc_ry, "ecutrho_ry": self.ecutrho_ry, "kpoint_mesh": list(self.kpoint_mesh),
            "fft_grid": list(self.grid), "n_bands": self.n_bands, "smearing": "fermi-dirac",
            "degauss_ry": self.degauss_ry, "ldos_broadening_ev": self.broadening_ev,
            "conv_thr_ry_per_atom": self.conv_thr_ry_per_atom, "mixing_beta": self.mixing_beta,
            "energy_zero": "Quantum ESPRESSO's eigenvalue scale (average electrostatic potential zero)",
        }

    @property
    def degauss_ry(self) -> float:
        """Fermi-Dirac smearing width k_B T in Rydberg."""
        return KB_EV_PER_K * self.temperature_k / RYDBERG_EV

    def energies_ev(self) -> np.ndarray:
        return self.energy_offset_ev + self.energy_spacing_ev * np.arange(self.n_energies)


@dataclass
class QeResult:
    """One snapshot's DFT: LDOS (nx, ny, nz, n_e) in states/eV/Angstrom^3 and the Kohn-Sham numbers."""

    ldos: np.ndarray
    fermi_energy_ev: float
    band_energy_ev: float
    total_energy_ev: float
    n_electrons: float
    eigenvalues_ev: list[list[float]]
    kpoint_weights: list[float]
    scf_iterations: int
    seconds_scf: float
    seconds_ldos: float
    lowest_level_ev: float
    log_tail: list[str] = field(default_factory=list)


def _pw_input(positions: np.ndarray, cell: np.ndarray, setup: QeSetup, pseudopotential: Path) -> str:
    n_atoms = len(positions)
    cell_lines = "\n".join(" ".join(f"{v:.12f}" for v in row) for row in cell)
    atom_lines = "\n".join("Be " + " ".join(f"{v:.12f}" for v in p) for p in positions)
    k1, k2, k3 = setup.kpoint_mesh
    n1, n2, n3 = setup.grid
    return f"""&CONTROL
  calculation = 'scf', prefix = 'snap', outdir = './out', pseudo_dir = '{pseudopotential.parent}',
  disk_io = 'low'
/
&SYSTEM
  ibrav = 0, nat = {n_atoms}, ntyp = 1, nbnd = {setup.n_bands},
  ecutwfc = {setup.ecutwfc_ry!r}, ecutrho = {setup.ecutrho_ry!r}, nr1 = {n1}, nr2 = {n2}, nr3 = {n3},
  occupations = 'smearing', smearing = 'fermi-dirac', degauss = {setup.degauss_ry!r}
/
&ELECTRONS
  conv_thr = {setup.conv_thr_ry_per_atom * n_atoms!r}, mixing_beta = {setup.mixing_beta!r}
/
ATOMIC_SPECIES
Be 9.0121831 {pseudopotential.name}
K_POINTS automatic
{k1} {k2} {k3} 0 0 0
CELL_PARAMETERS angstrom
{cell_lines}
ATOMIC_POSITIONS angstrom
{atom_lines}
"""


def _pp_input(setup: QeSetup) -> str:
    # pp.x counts the energies from emin in steps of delta_e up to emax; half a step of margin
    # keeps the last one against rounding.
    emax = setup.energy_offset_ev + (setup.n_energies - 0.5) * setup.energy_spacing_ev
    return f"""&INPUTPP
  prefix = 'snap', outdir = './out', plot_num = 3,
  emin = {setup.energy_offset_ev!r}, emax = {emax!r}, delta_e = {setup.energy_spacing_ev!r},
  degauss_ldos = {setup.broadening_ev!r}
/
&PLOT
  iflag = 3, output_format = 6, fileout = 'ldos.cube'
/
"""


def _run(executable: str, text: str, folder: Path, log_name: str, timeout_s: float) -> str:
    (folder / f"{log_name}.in").write_text(text)
    with open(folder / f"{log_name}.out", "w") as log:
        done = subprocess.run([executable, "-in", f"{log_name}.in"], stdout=log, stderr=subprocess.STDOUT,
                              cwd=folder, env=_serial_env(), timeout=timeout_s)
    output = (folder / f"{log_name}.out").read_text(errors="replace")
    if done.returncode != 0 or "JOB DONE" not in output:
        tail = "\n".join(output.splitlines()[-20:])
        raise DataError(f"{Path(executable).name} failed in {folder} (exit code {done.returncode}); "
                        f"the end of {log_name}.out:\n{tail}")
    return output


def _parse_xml(path: Path) -> dict[str, Any]:
    """Eigenvalues (eV), normalised k weights, Fermi level, total energy and electrons from pw.x's XML."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as exc:
        raise DataError(f"cannot read pw.x's XML output {path} ({exc})") from exc
    kpoints = root.findall(".//band_structure/ks_energies")
    fermi = root.find(".//band_structure/fermi_energy")
    energy = root.find(".//total_energy/etot")
    electrons = root.find(".//band_structure/nelec")
    if not kpoints or fermi is None or energy is None or electrons is None:
        raise DataError(f"{path} lacks eigenvalues, Fermi energy, total energy or electron count: pw.x did not finish?")
    weights = np.array([float(k.find("k_point").get("weight")) for k in kpoints])  # type: ignore[union-attr]
    eigenvalues = np.array([[float(v) for v in k.find("eigenvalues").text.split()]  # type: ignore[union-attr]
                            for k in kpoints]) * HARTREE_EV
    return {"weights": weights / weights.sum(), "eigenvalues_ev": eigenvalues,
            "fermi_energy_ev": float(fermi.text) * HARTREE_EV, "total_energy_ev": float(energy.text) * HARTREE_EV,
            "n_electrons": float(electrons.text)}


def band_energy_from_eigenvalues(eigenvalues_ev: np.ndarray, weights: np.ndarray, fermi_ev: float,
                                 temperature_k: float) -> tuple[float, float]:
    """(sum_nk 2 w_k f(e_nk) e_nk, sum_nk 2 w_k f(e_nk)): band energy (eV) and electrons, spin-degenerate."""
    x = np.clip((eigenvalues_ev - fermi_ev) / (KB_EV_PER_K * temperature_k), -200.0, 200.0)
    occupation = 2.0 * weights[:, None] / (1.0 + np.exp(x))
    return float((occupation * eigenvalues_ev).sum()), float(occupation.sum())


def solve_snapshot(positions: np.ndarray, cell: np.ndarray, setup: QeSetup, pseudopotential: Path,
                   folder: str | Path, timeout_s: float = 3600.0) -> QeResult:
    """SCF and LDOS of one configuration in ``folder`` (created; wave functions deleted at the end)."""
    from hpsearch.data.cube import read_cube_ldos
    from hpsearch.physics import EnergyGrid

    tools = find_executables()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scf = _run(tools["pw.x"], _pw_input(positions, cell, setup, pseudopotential), folder, "pw", timeout_s)
    seconds_scf = time.perf_counter() - start
    parsed = _parse_xml(folder / "out" / "snap.xml")
    start = time.perf_counter()
    _run(tools["pp.x"], _pp_input(setup), folder, "pp", timeout_s)
    cubes = sorted(folder.glob("*ldos.cube"))
    if len(cubes) != setup.n_energies:
        raise DataError(f"pp.x wrote {len(cubes)} LDOS cube files in {folder}, expected {setup.n_energies}: "
                        "check the energy window settings")
    grid = EnergyGrid(offset_ev=setup.energy_offset_ev, spacing_ev=setup.energy_spacing_ev, n=setup.n_energies)
    cube = read_cube_ldos(cubes, grid)
    seconds_ldos = time.perf_counter() - start
    if tuple(cube.ldos.shape[:3]) != tuple(setup.grid):
        raise DataError(f"pp.x wrote a {cube.ldos.shape[:3]} grid, expected {setup.grid}")
    band, electrons = band_energy_from_eigenvalues(parsed["eigenvalues_ev"], parsed["weights"],
                                                   parsed["fermi_energy_ev"], setup.temperature_k)
    if abs(electrons - parsed["n_electrons"]) > 1e-3 * parsed["n_electrons"]:
        raise DataError(f"the occupied eigenvalues of {folder} hold {electrons:.4f} electrons, pw.x says "
                        f"{parsed['n_electrons']}: too few bands (raise n_bands)")
    highest = float(parsed["eigenvalues_ev"][:, -1].min())
    margin = setup.band_margin_broadenings
    needed = setup.energy_offset_ev + (setup.n_energies - 1) * setup.energy_spacing_ev + (margin or 0.0) * setup.broadening_ev
    if margin is not None and highest < needed:
        raise DataError(f"the highest band reaches down to {highest:.2f} eV, below the window's top plus {margin:g} "
                        f"broadenings ({needed:.2f} eV): the LDOS would miss states; raise n_bands")
    iterations = [int(line.split()[-2]) for line in scf.splitlines() if "convergence has been achieved in" in line]
    shutil.rmtree(folder / "out", ignore_errors=True)
    for path in [*cubes, *folder.glob("tmp.pp*")]:
        path.unlink(missing_ok=True)
    return QeResult(
        ldos=cube.ldos, fermi_energy_ev=parsed["fermi_energy_ev"], band_energy_ev=band,
        total_energy_ev=parsed["total_energy_ev"], n_electrons=parsed["n_electrons"],
        eigenvalues_ev=parsed["eigenvalues_ev"].tolist(), kpoint_weights=parsed["weights"].tolist(),
        scf_iterations=iterations[-1] if iterations else -1, seconds_scf=seconds_scf, seconds_ldos=seconds_ldos,
        lowest_level_ev=float(parsed["eigenvalues_ev"].min()),
    )


def free_electron_bands(volume_angstrom3: float, bandwidth_ev: float) -> int:
    """Bands a free-electron gas fills over ``bandwidth_ev`` in ``volume`` (spin-degenerate)."""
    k = math.sqrt(max(bandwidth_ev, 0.0) / 3.80998212)  # hbar^2 / 2m = 3.81 eV Angstrom^2
    return int(math.ceil(volume_angstrom3 * k**3 / (3.0 * math.pi**2)))


def summed_dos(eigenvalues_ev: Sequence[Sequence[float]], weights: Sequence[float], energies_ev: np.ndarray,
               degauss_ev: float) -> np.ndarray:
    """The DOS of the eigenvalues (states/eV, spin-degenerate) broadened as pp.x broadens the LDOS.

    pp.x (``plot_num = 3``) weights each state with QE's ``w0gauss((E - e) / degauss, ngauss) /
    degauss`` of the SCF's smearing; for Fermi-Dirac smearing that is minus the derivative of the
    Fermi function, 1 / (2 + exp(x) + exp(-x)) / degauss, whose standard deviation is
    pi / sqrt(3) degauss (0.91 eV for degauss_ldos = 0.5 eV).
    """
    e = np.asarray(eigenvalues_ev, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    x = np.clip((energies_ev[None, None, :] - e[:, :, None]) / degauss_ev, -200.0, 200.0)
    kernel = 1.0 / (2.0 + np.exp(x) + np.exp(-x))
    return (2.0 * w[:, None, None] * kernel).sum(axis=(0, 1)) / degauss_ev
