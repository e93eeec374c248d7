"""ACSD (paper eq. 16-17) against a loop-based reference, on Be2 data, and its sampled variant."""

from __future__ import annotations

import json
import math
from pathlib import Path

import ase
import numpy as np
import pytest

from hpsearch.descriptors import (
    SnapSettings,
    acsd,
    acsd_from_vectors,
    acsd_sampled,
    acsd_with_uncertainty,
    sample_point_pairs,
    snap_grid,
)
from hpsearch.errors import ConfigError, DataError


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    dot = math.fsum(float(a) * float(b) for a, b in zip(x, y))
    norm_x = math.sqrt(math.fsum(float(a) ** 2 for a in x))
    norm_y = math.sqrt(math.fsum(float(b) ** 2 for b in y))
    return dot / (norm_x * norm_y)


def loop_acsd(
    desc: np.ndarray, ldos: np.ndarray, anchors: np.ndarray, partners: np.ndarray, mode: str
) -> float:
    """Eq. 17 (mode "abs") or MALA's clipped S(B) - S(d) (mode "one_sided"), pair by pair."""
    total = []
    for t in anchors:
        for s in partners:
            s_b = cosine(desc[t], desc[s])
            s_d = cosine(ldos[t], ldos[s])
            total.append(abs(s_d - s_b) if mode == "abs" else max(s_b - s_d, 0.0))
    return math.fsum(total) / len(total)


@pytest.fixture(scope="module")
def be2_arrays(be2_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(descriptors without coordinates, LDOS) of snapshot 0, grid-shaped float32."""
    desc = np.load(be2_dir / "Be_snapshot0.in.npy")[..., 3:]
    return desc, np.load(be2_dir / "Be_snapshot0.out.npy")


def load_be2_atoms(be2_dir: Path, snapshot: int) -> ase.Atoms:
    info = json.loads((be2_dir / f"Be_snapshot{snapshot}.info.json").read_text())["atoms"]
    return ase.Atoms(
        numbers=info["numbers"], positions=info["positions"], cell=info["cell"], pbc=info["pbc"]
    )


def test_sampling_draws_distinct_reproducible_points() -> None:
    anchors, partners = sample_point_pairs(1000, 200, seed=3)
    both = np.concatenate([anchors, partners])
    assert anchors.shape == partners.shape == (200,)
    assert len(np.unique(both)) == 400 and both.min() >= 0 and both.max() < 1000
    again = sample_point_pairs(1000, 200, seed=3)
    assert np.array_equal(again[0], anchors) and np.array_equal(again[1], partners)
    assert not np.array_equal(sample_point_pairs(1000, 200, seed=4)[0], anchors)


@pytest.mark.parametrize("mode", ["abs", "one_sided"])
def test_matches_loop_reference_on_be2(
    be2_arrays: tuple[np.ndarray, np.ndarray], mode: str
) -> None:
    desc, ldos = be2_arrays
    flat_desc, flat_ldos = desc.reshape(-1, 91), ldos.reshape(-1, 11)
    anchors, partners = sample_point_pairs(len(flat_desc), 120, seed=7)
    expected = loop_acsd(flat_desc, flat_ldos, anchors, partners, mode)
    assert acsd(desc, ldos, n_points=120, seed=7, mode=mode) == pytest.approx(expected, rel=1e-10)
    # flat arrays, float64 arrays: the same number
    assert acsd(flat_desc, flat_ldos.astype(np.float64), n_points=120, seed=7, mode=mode) == (
        pytest.approx(expected, rel=1e-10)
    )


def test_be2_values_are_small_and_seed_dependent(be2_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    desc, ldos = be2_arrays
    values = [acsd(desc, ldos, seed=seed) for seed in range(3)]
    # Be2 is a smooth metal: descriptor and LDOS similarities track each other closely
    assert all(0.005 < v < 0.05 for v in values)
    assert len(set(values)) == 3
    one_sided = acsd(desc, ldos, mode="one_sided")
    assert 0.0 <= one_sided < values[0]


def test_one_sided_counts_only_descriptors_more_similar_than_ldos() -> None:
    rng = np.random.default_rng(0)
    varied = rng.random((500, 8)) + 0.1
    constant = np.tile(rng.random(8) + 0.1, (500, 1))  # every pair has S_C = 1
    ldos_varies = acsd(constant, varied, n_points=50, mode="one_sided")
    assert ldos_varies > 0.01
    assert ldos_varies == pytest.approx(acsd(constant, varied, n_points=50, mode="abs"), rel=1e-12)
    assert acsd(varied, constant, n_points=50, mode="one_sided") == 0.0
    assert acsd(varied, constant, n_points=50, mode="abs") == pytest.approx(ldos_varies, rel=1e-12)


def test_equal_similarities_give_zero_and_scale_invariance() -> None:
    rng = np.random.default_rng(1)
    values = rng.random((400, 6))
    assert acsd(values, values.copy(), n_points=100) == pytest.approx(0.0, abs=1e-12)
    ldos = rng.random((400, 11))
    scaled = values * rng.uniform(0.1, 10.0, size=(400, 1))  # cosine ignores each vector's norm
    assert acsd(scaled, ldos, n_points=100) == pytest.approx(acsd(values, ldos, n_points=100))


def test_uncertainty(be2_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    desc, ldos = be2_arrays
    value, std_points = acsd_with_uncertainty(desc, ldos, seed=0)
    assert value == acsd(desc, ldos, seed=0)
    _, std_pairs = acsd_with_uncertainty(desc, ldos, seed=0, resample="pairs")
    assert 0.0 < std_pairs < std_points
    over_seeds = np.std([acsd(desc, ldos, seed=seed) for seed in range(40)], ddof=1)
    assert 0.5 < std_points / over_seeds < 2.0


def test_input_errors(be2_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    desc, ldos = be2_arrays
    with pytest.raises(DataError, match="same points"):
        acsd(desc, ldos[:, :, :26])
    with pytest.raises(DataError, match="same points"):
        acsd(desc, ldos.reshape(18, 27, 18, 11))
    broken = ldos.copy()
    broken[3, 4, 5, 6] = np.nan
    with pytest.raises(DataError, match="NaN"):
        acsd(desc, broken)
    with pytest.raises(ConfigError, match="n_points <= 4374"):
        acsd(desc, ldos, n_points=5000)
    with pytest.raises(ConfigError, match="positive integer"):
        acsd(desc, ldos, n_points=0)
    with pytest.raises(ConfigError, match="mode"):
        acsd(desc, ldos, mode="squared")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="zero vector"):
        acsd(np.zeros((100, 4)), np.ones((100, 3)), n_points=10)
    with pytest.raises(DataError, match="one LDOS vector per descriptor vector"):
        acsd_from_vectors(np.ones((3, 2)), np.ones((3, 2)), np.ones((2, 4)), np.ones((3, 4)))
    with pytest.raises(ConfigError, match="resample"):
        acsd_with_uncertainty(desc, ldos, resample="rows")  # type: ignore[arg-type]


@pytest.mark.lammps
def test_sampled_equals_full_grid_on_be2(
    be2_dir: Path, be2_arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    atoms0, atoms1 = load_be2_atoms(be2_dir, 0), load_be2_atoms(be2_dir, 1)
    desc0, ldos0 = be2_arrays
    desc1 = np.load(be2_dir / "Be_snapshot1.in.npy")[..., 3:]
    ldos1 = np.load(be2_dir / "Be_snapshot1.out.npy")
    # the MALA descriptors are the paper's settings (our defaults) on the full grid
    expected = np.mean([acsd(desc0, ldos0, seed=5), acsd(desc1, ldos1, seed=5)])
    sampled = acsd_sampled([atoms0, atoms1], [ldos0, ldos1], SnapSettings(), seed=5)
    assert sampled == pytest.approx(expected, abs=1e-6)
    for mode in ("abs", "one_sided"):
        settings = SnapSettings(rcut=3.5, twojmax=4)
        full = snap_grid(atoms0, (18, 18, 27), **settings.model_dump())
        assert acsd_sampled([atoms0], [ldos0], settings, n_points=150, mode=mode) == (
            pytest.approx(acsd(full, ldos0, n_points=150, mode=mode), abs=1e-6)
        )


def test_sampled_input_errors(be2_dir: Path, be2_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    atoms = load_be2_atoms(be2_dir, 0)
    _, ldos = be2_arrays
    with pytest.raises(DataError, match="grid-shaped"):
        acsd_sampled([atoms], [ldos.reshape(-1, 11)])
    with pytest.raises(DataError, match="one LDOS per snapshot"):
        acsd_sampled([atoms, atoms], [ldos])
