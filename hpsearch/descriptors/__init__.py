"""SNAP descriptors on real-space grids (through LAMMPS) and the ACSD descriptor metric.

LAMMPS is imported lazily, on the first descriptor calculation.
"""

from __future__ import annotations

from hpsearch.descriptors.acsd import (
    AcsdMode,
    acsd,
    acsd_from_vectors,
    acsd_sampled,
    acsd_with_uncertainty,
    cosine_similarity_matrix,
    sample_point_pairs,
)
from hpsearch.descriptors.snap import (
    SnapSettings,
    grid_points_angstrom,
    n_bispectrum,
    snap_at_points,
    snap_grid,
)

__all__ = [
    "AcsdMode",
    "SnapSettings",
    "acsd",
    "acsd_from_vectors",
    "acsd_sampled",
    "acsd_with_uncertainty",
    "cosine_similarity_matrix",
    "grid_points_angstrom",
    "n_bispectrum",
    "sample_point_pairs",
    "snap_at_points",
    "snap_grid",
]
