"""Mutual information between descriptors and LDOS: closed forms and real Be2 data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpsearch.descriptors.mi import gaussian_mutual_information, mutual_information
from hpsearch.errors import ConfigError, DataError


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_matches_the_gaussian_closed_form(rho: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6000, 1))
    y = rho * x + np.sqrt(1 - rho * rho) * rng.normal(size=(6000, 1))
    exact = gaussian_mutual_information(rho)
    assert mutual_information(x, y, n_points=6000) == pytest.approx(exact, rel=0.1, abs=0.02)
    assert mutual_information(x, y, n_points=6000, n_components=1, method="gmm") == pytest.approx(
        exact, rel=0.1, abs=0.02)


def test_independent_blocks_give_about_zero_and_dependence_more() -> None:
    rng = np.random.default_rng(2)
    b = rng.normal(size=(4000, 12))
    d_free = rng.normal(size=(4000, 8))
    d_tied = np.tanh(b[:, :8] @ rng.normal(size=(8, 8))) + 0.1 * rng.normal(size=(4000, 8))
    free = mutual_information(b, d_free, n_points=4000)
    tied = mutual_information(b, d_tied, n_points=4000)
    assert abs(free) < 0.05
    assert tied > 0.5 > free
    assert abs(mutual_information(b, d_free, n_points=4000, method="gmm")) < 0.05


def test_real_be2_descriptors_inform_about_their_ldos(be2_dir: Path) -> None:
    descriptors = np.load(be2_dir / "Be_snapshot0.in.npy")[..., 3:]
    ldos = np.load(be2_dir / "Be_snapshot0.out.npy")
    matched = mutual_information(descriptors, ldos, n_points=3000)
    shuffled = np.random.default_rng(0).permutation(descriptors.reshape(-1, descriptors.shape[-1]))
    unrelated = mutual_information(shuffled, ldos.reshape(-1, ldos.shape[-1]), n_points=3000)
    assert abs(unrelated) < 0.1  # the KSG estimate of independent blocks
    assert matched > 1.0


def test_bad_input_says_what_is_wrong() -> None:
    rng = np.random.default_rng(3)
    with pytest.raises(DataError, match="grid points"):
        mutual_information(rng.normal(size=(100, 3)), rng.normal(size=(90, 3)))
    bad = rng.normal(size=(500, 3))
    bad[4, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        mutual_information(bad, rng.normal(size=(500, 3)))
    with pytest.raises(ConfigError, match="ksg"):
        mutual_information(rng.normal(size=(500, 3)), rng.normal(size=(500, 3)), method="mine")
