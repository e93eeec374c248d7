"""SNAP descriptors through LAMMPS: the real Be2 data, cell geometry, point evaluation, options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ase
import numpy as np
import pytest

from hpsearch.descriptors import (
    SnapSettings,
    grid_points_angstrom,
    n_bispectrum,
    snap_at_points,
    snap_grid,
)
from hpsearch.errors import ConfigError, DataError

pytestmark = pytest.mark.lammps

SMALL = {"rcut": 4.67637, "twojmax": 4}  # cheap settings for the geometry tests
SMALL_GRID = (6, 6, 9)


def load_be2_atoms(be2_dir: Path, snapshot: int) -> ase.Atoms:
    info = json.loads((be2_dir / f"Be_snapshot{snapshot}.info.json").read_text())["atoms"]
    return ase.Atoms(
        numbers=info["numbers"], positions=info["positions"], cell=info["cell"], pbc=info["pbc"]
    )


def max_deviation_to_scale(values: np.ndarray, reference: np.ndarray) -> float:
    """max |values - reference| per component, relative to that component's largest |value|."""
    axes = tuple(range(reference.ndim - 1))
    scale = np.abs(reference).max(axis=axes)
    return float((np.abs(values.astype(np.float64) - reference).max(axis=axes) / scale).max())


@pytest.fixture(scope="module")
def be2_grid0(be2_dir: Path) -> np.ndarray:
    """Snapshot 0 recomputed with the paper's settings (the defaults)."""
    return snap_grid(load_be2_atoms(be2_dir, 0), (18, 18, 27))


@pytest.fixture(scope="module")
def be2_small(be2_dir: Path) -> tuple[ase.Atoms, np.ndarray]:
    atoms = load_be2_atoms(be2_dir, 0)
    return atoms, snap_grid(atoms, SMALL_GRID, **SMALL)


def test_snap_grid_reproduces_mala_descriptors_snapshot0(
    be2_dir: Path, be2_grid0: np.ndarray
) -> None:
    reference = np.load(be2_dir / "Be_snapshot0.in.npy")
    assert be2_grid0.dtype == np.float32
    assert be2_grid0.shape == reference.shape[:3] + (91,)
    assert max_deviation_to_scale(be2_grid0, reference[..., 3:].astype(np.float64)) < 1e-5
    # The coordinate columns of the MALA array are our grid points, in the same order.
    cell = load_be2_atoms(be2_dir, 0).get_cell()[:]
    points = grid_points_angstrom(cell, (18, 18, 27)).reshape(18, 18, 27, 3)
    np.testing.assert_allclose(points, reference[..., :3], atol=1e-5)


def test_snap_grid_reproduces_mala_descriptors_snapshot3(be2_dir: Path) -> None:
    reference = np.load(be2_dir / "Be_snapshot3.in.npy")[..., 3:].astype(np.float64)
    computed = snap_grid(load_be2_atoms(be2_dir, 3), reference.shape[:3], rcut=4.67637, twojmax=10)
    assert max_deviation_to_scale(computed, reference) < 1e-5


def test_rotated_system_gives_the_same_grid(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, expected = be2_small
    q, r = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    if np.linalg.det(rotation) < 0:
        rotation[:, 0] *= -1.0
    rotated = ase.Atoms(
        numbers=atoms.numbers,
        positions=atoms.positions @ rotation.T,
        cell=atoms.get_cell()[:] @ rotation.T,
        pbc=True,
    )
    assert abs(rotated.get_cell()[0, 1]) > 0.1  # a no longer lies along x
    assert max_deviation_to_scale(snap_grid(rotated, SMALL_GRID, **SMALL), expected) < 1e-5


def test_permuted_cell_vectors_permute_the_grid(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, expected = be2_small
    a, b, c = atoms.get_cell()[:]
    permuted = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=[b, c, a], pbc=True)
    computed = snap_grid(permuted, (SMALL_GRID[1], SMALL_GRID[2], SMALL_GRID[0]), **SMALL)
    # point (i/nx a + j/ny b + k/nz c) is point (j, k, i) of the permuted cell
    assert max_deviation_to_scale(computed.transpose(2, 0, 1, 3), expected) < 1e-5


def test_large_tilt_gives_the_same_points(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, expected = be2_small
    a, b, c = atoms.get_cell()[:]
    tilted = ase.Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=[a, b + 2 * a, c], pbc=True
    )
    computed = snap_grid(tilted, SMALL_GRID, **SMALL)
    nx, ny, _ = SMALL_GRID
    # i/nx a + j/ny b = (i - 2j)/nx a + j/ny (b + 2a) since nx == ny
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    remapped = computed[(i - 2 * j) % nx, j]
    assert max_deviation_to_scale(remapped, expected) < 1e-5


def test_left_handed_cell_is_indexed_along_its_own_vectors(
    be2_small: tuple[ase.Atoms, np.ndarray],
) -> None:
    atoms, expected = be2_small
    a, b, c = atoms.get_cell()[:]
    mirrored = ase.Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=[a, b, -c], pbc=True
    )
    assert np.linalg.det(mirrored.get_cell()[:]) < 0
    computed = snap_grid(mirrored, SMALL_GRID, **SMALL)
    nz = SMALL_GRID[2]
    # k/nz c == ((nz - k) mod nz)/nz (-c) modulo a lattice vector
    assert max_deviation_to_scale(computed[:, :, (-np.arange(nz)) % nz], expected) < 1e-5


def test_two_elements_with_equal_weights_match_one(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, expected = be2_small
    mixed = atoms.copy()
    mixed.numbers = [4, 3]  # two LAMMPS types, same radelem and wj
    assert max_deviation_to_scale(snap_grid(mixed, SMALL_GRID, **SMALL), expected) < 1e-6


def test_snap_at_points_equals_grid_at_grid_points(be2_dir: Path, be2_grid0: np.ndarray) -> None:
    atoms = load_be2_atoms(be2_dir, 0)
    flat = np.random.default_rng(0).choice(be2_grid0[..., 0].size, 300, replace=False)
    points = grid_points_angstrom(atoms.get_cell()[:], (18, 18, 27), flat)
    expected = be2_grid0.reshape(-1, 91)[flat].astype(np.float64)
    computed = snap_at_points(atoms, points)
    assert computed.shape == (300, 91) and computed.dtype == np.float32
    assert max_deviation_to_scale(computed, expected) < 1e-5
    # the same points moved by lattice vectors (outside the cell) give the same values
    shifts = np.random.default_rng(1).integers(-3, 4, size=(300, 3)) @ atoms.get_cell()[:]
    assert max_deviation_to_scale(snap_at_points(atoms, points + shifts), expected) < 1e-5


def test_snap_at_points_in_a_general_cell(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, _ = be2_small
    a, b, c = atoms.get_cell()[:]
    general = ase.Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=[b + a, c, -a], pbc=True
    )
    shape = (5, 7, 4)
    grid = snap_grid(general, shape, **SMALL)
    flat = np.arange(0, grid[..., 0].size, 3)
    points = grid_points_angstrom(general.get_cell()[:], shape, flat)
    computed = snap_at_points(general, points, **SMALL)
    assert max_deviation_to_scale(computed, grid.reshape(-1, grid.shape[-1])[flat]) < 1e-5


def test_component_counts_and_quadratic_terms(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, expected = be2_small
    assert [n_bispectrum(t) for t in (2, 4, 6, 8, 10)] == [5, 14, 30, 55, 91]
    assert expected.shape[-1] == n_bispectrum(4) == SnapSettings(twojmax=4).n_components
    linear = snap_grid(atoms, (3, 3, 4), rcut=4.0, twojmax=2).astype(np.float64)
    quadratic = snap_grid(atoms, (3, 3, 4), rcut=4.0, twojmax=2, quadraticflag=1)
    assert quadratic.shape[-1] == SnapSettings(twojmax=2, quadraticflag=1).n_components == 5 + 15
    np.testing.assert_allclose(quadratic[..., :5], linear, rtol=1e-6)
    np.testing.assert_allclose(quadratic[..., 5], 0.5 * linear[..., 0] ** 2, rtol=1e-5)
    np.testing.assert_allclose(quadratic[..., 6], linear[..., 0] * linear[..., 1], rtol=1e-5)


def test_options_change_the_result(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, expected = be2_small
    with_bzero = snap_grid(atoms, SMALL_GRID, bzeroflag=1, **SMALL)
    assert not np.allclose(with_bzero, expected)
    shorter = snap_grid(atoms, SMALL_GRID, rcut=3.5, twojmax=4)
    assert not np.allclose(shorter, expected)


def test_invalid_settings_are_config_errors(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, _ = be2_small
    with pytest.raises(ConfigError, match=r"unknown SNAP option.*'rcutfac'.*valid options.*rfac0"):
        snap_grid(atoms, SMALL_GRID, rcutfac=4.0)
    with pytest.raises(ConfigError, match="rfac0"):
        snap_grid(atoms, SMALL_GRID, rfac0=1.5)
    with pytest.raises(ConfigError, match="grid_shape"):
        snap_grid(atoms, (6, 6), **SMALL)
    with pytest.raises(ConfigError, match="unknown SNAP option"):
        snap_at_points(atoms, np.zeros((2, 3)), chem=1)


def test_invalid_inputs_are_data_errors(be2_small: tuple[ase.Atoms, np.ndarray]) -> None:
    atoms, _ = be2_small
    open_atoms = atoms.copy()
    open_atoms.pbc = [True, True, False]
    with pytest.raises(DataError, match="periodic"):
        snap_grid(open_atoms, SMALL_GRID, **SMALL)
    with pytest.raises(DataError, match=r"\(m, 3\)"):
        snap_at_points(atoms, np.zeros((4, 2)), **SMALL)
    flat = atoms.copy()
    flat.cell[2] = flat.cell[0]
    with pytest.raises(DataError, match="non-singular"):
        snap_grid(flat, SMALL_GRID, **SMALL)


def test_lammps_leaves_torch_threads_alone(tmp_path: Path) -> None:
    """With OMP_NUM_THREADS unset, creating LAMMPS must not drop torch to one thread."""
    script = (
        "import torch, ase\n"
        "from hpsearch.descriptors import snap_grid\n"
        "torch.set_num_threads(3)\n"
        "atoms = ase.Atoms('Be2', positions=[[0, 0, 0], [1.1, 0.6, 1.8]],\n"
        "                  cell=[2.3, 2.3, 3.6], pbc=True)\n"
        "snap_grid(atoms, (2, 2, 2), twojmax=2)\n"
        "print(torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "3"
