"""Descriptor search: the ACSD over a grid of (rcut, twojmax) and the paper's choice rule (issue 7).

Each snapshot is sampled once (:func:`sample_snapshot`: 2 * n_points grid points and their
LDOS); every setting then needs SNAP descriptors at those points only (:func:`snap_at_points`),
so all settings are compared on the same pairs. :func:`run_scan` computes one setting per task,
as Ray tasks of :mod:`hpsearch.parallel` when Ray is available, and :func:`choose_descriptors` applies the
paper's rule: the largest cutoff and the smallest band limit at which the ACSD reaches its
minimum (section 3.3: "a combination of maximum R_cut and minimum J_max for which
S_C(B) ~ S_C(d)"; "one would choose the first data point for which the ACSD encounters a
minimum").

Example::

    snapshots = [sample_snapshot("s0", atoms, ldos, n_points=200, seed=0)]
    results = run_scan(snapshots, scan_grid([3.5, 4.5, 5.5], [6, 8, 10]))
    choice = choose_descriptors(results)
    print(choice.rcut, choice.twojmax)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hpsearch.descriptors.acsd import AcsdMode, acsd_with_uncertainty, sample_point_pairs
from hpsearch.descriptors.snap import SnapSettings, grid_points_angstrom, snap_at_points
from hpsearch.errors import ConfigError, DataError, validate_mapping

if TYPE_CHECKING:
    import ase

__all__ = [
    "AcsdScanConfig",
    "Choice",
    "SampledSnapshot",
    "ScanTracking",
    "SettingResult",
    "acsd_for_setting",
    "choose_descriptors",
    "parse_scan_config",
    "run_scan",
    "sample_snapshot",
    "scan_grid",
]

logger = logging.getLogger(__name__)

Parallel = Literal["auto", "ray", "serial"]
RULE = (
    "minimum ACSD over the grid; settings within tie_sigma combined standard deviations of it "
    "count as reaching the minimum (tie_sigma 0: exact ties only); among those, the smallest "
    "twojmax, then the largest rcut"
)


# --------------------------------------------------------------------------- the scan file


class ScanTracking(BaseModel):
    """Where the scan is logged: an MLflow URI (default MLFLOW_TRACKING_URI or ./mlruns)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str | None = None
    experiment: str = "acsd"
    enabled: bool = True


class AcsdScanConfig(BaseModel):
    """A descriptor scan read from YAML (``hpsearch acsd FILE``); unknown keys are errors.

    ``store``: a snapshot store path, or "default" / "small" (the generated dataset).
    ``snapshots``: all (None), the first N, or a list of names. ``rcut`` in Angstrom (LAMMPS
    rcutfac with radelem 0.5), ``twojmax`` = 2 J_max. ``snap_options``: other SnapSettings fields.

    Example:
        >>> AcsdScanConfig(name="be2", store="be2.h5", rcut=[4.0, 5.0], twojmax=[6]).n_settings
        2
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    store: str = "default"
    snapshots: int | tuple[str, ...] | None = None
    rcut: tuple[float, ...] = Field(min_length=1)
    twojmax: tuple[int, ...] = Field(min_length=1)
    n_points: int = Field(200, ge=1)
    seed: int = Field(0, ge=0)
    mode: AcsdMode = "abs"
    n_bootstrap: int = Field(500, ge=2)
    tie_sigma: float = Field(0.0, ge=0.0)
    parallel: Parallel = "auto"
    num_cpus: int | None = Field(None, ge=1)
    snap_options: dict[str, Any] = Field(default_factory=dict)
    output: str | None = None
    tracking: ScanTracking = ScanTracking()

    @field_validator("rcut")
    @classmethod
    def _rcuts(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(not math.isfinite(v) or v <= 0 for v in values) or len(set(values)) != len(values):
            raise ValueError(f"rcut must be distinct positive numbers (Angstrom), got {list(values)}")
        return tuple(sorted(values))

    @field_validator("twojmax")
    @classmethod
    def _twojmaxes(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 0 or v > 20 for v in values) or len(set(values)) != len(values):
            raise ValueError(f"twojmax must be distinct integers in [0, 20], got {list(values)}")
        return tuple(sorted(values))

    @field_validator("snapshots")
    @classmethod
    def _snapshots(cls, value: int | tuple[str, ...] | None) -> int | tuple[str, ...] | None:
        if isinstance(value, int) and value < 1 or isinstance(value, tuple) and not value:
            raise ValueError(f"snapshots must be a positive count or a non-empty list, got {value!r}")
        return value

    @model_validator(mode="after")
    def _snap_options(self) -> AcsdScanConfig:
        scanned = sorted({"rcut", "twojmax"} & set(self.snap_options))
        if scanned:
            raise ValueError(f"snap_options must not set {scanned}: list the values under rcut / twojmax")
        for rcut in self.rcut:
            for twojmax in self.twojmax:  # ConfigError (a ValueError) names the valid options
                SnapSettings.from_options(rcut, twojmax, self.snap_options)
        return self

    @property
    def n_settings(self) -> int:
        return len(self.rcut) * len(self.twojmax)

    def grid(self) -> list[SnapSettings]:
        return scan_grid(self.rcut, self.twojmax, self.snap_options)


def parse_scan_config(raw: Any, source: str = "scan file") -> AcsdScanConfig:
    """Validate a mapping (e.g. loaded YAML); ConfigError listing every problem with its key."""
    return validate_mapping(AcsdScanConfig, raw, source, "name, store, rcut, twojmax, ...")


def scan_grid(
    rcuts: Sequence[float], twojmaxes: Sequence[int], options: dict[str, Any] | None = None
) -> list[SnapSettings]:
    """Every (rcut, twojmax) pair as SnapSettings, rcut outer, both ascending."""
    return [
        SnapSettings.from_options(float(r), int(j), options or {})
        for r in sorted(rcuts)
        for j in sorted(twojmaxes)
    ]


# --------------------------------------------------------------------------- per setting


@dataclass(frozen=True)
class SampledSnapshot:
    """One snapshot reduced to what the ACSD needs: atoms, 2n points (anchors first), their LDOS."""

    name: str
    atoms: ase.Atoms
    points_angstrom: np.ndarray  # (2 n_points, 3)
    ldos: np.ndarray  # (2 n_points, n_energies)

    @property
    def n_points(self) -> int:
        return len(self.points_angstrom) // 2


def sample_snapshot(
    name: str, atoms: ase.Atoms, ldos: np.ndarray, n_points: int = 200, seed: int = 0,
    full_grid_shape: Sequence[int] | None = None, grid_offset: Sequence[int] = (0, 0, 0),
) -> SampledSnapshot:
    """Draw the pairs of a grid-shaped LDOS (nx, ny, nz, n_e) as :func:`acsd` does (same seed).

    For an LDOS that is a block of the cell's grid, ``full_grid_shape`` is that grid and
    ``grid_offset`` the block's first point in it (the points are placed accordingly).
    """
    if np.ndim(ldos) != 4:
        raise DataError(f"snapshot {name!r}: LDOS must be (nx, ny, nz, n_energies), got {np.shape(ldos)}")
    shape = np.shape(ldos)[:3]
    anchors, partners = sample_point_pairs(int(np.prod(shape)), n_points, seed)
    chosen = np.concatenate([anchors, partners])
    full = tuple(int(n) for n in (full_grid_shape or shape))
    ijk = np.stack(np.unravel_index(chosen, shape), axis=0) + np.asarray(grid_offset, np.int64)[:, None]
    if (ijk.max(axis=1) >= np.asarray(full)).any():
        raise DataError(f"snapshot {name!r}: a block of {shape} points at offset {tuple(grid_offset)} "
                        f"does not fit in the grid {full}")
    points = grid_points_angstrom(atoms.get_cell()[:], full, np.ravel_multi_index(tuple(ijk), full))
    values = np.asarray(ldos).reshape(-1, np.shape(ldos)[-1])[chosen]
    return SampledSnapshot(name, atoms.copy(), points, np.array(values, dtype=np.float64))


def _acsd_and_std(
    features: np.ndarray, ldos: np.ndarray, mode: AcsdMode, seed: int, n_bootstrap: int
) -> tuple[float, float]:
    """ACSD of anchors (first half) x partners (second half) with the points bootstrap std.

    The rows are placed where :func:`acsd_with_uncertainty` will draw them (it samples through
    :func:`sample_point_pairs` with the same seed), so its anchors and partners are ours.
    """
    n = len(features) // 2
    anchors, partners = sample_point_pairs(2 * n, n, seed)
    order = np.empty(2 * n, dtype=np.int64)
    order[anchors], order[partners] = np.arange(n), np.arange(n, 2 * n)
    return acsd_with_uncertainty(features[order], ldos[order], n, seed, mode, n_bootstrap)


def _mi_or_nan(features: np.ndarray, ldos: np.ndarray, seed: int) -> float:
    """Mutual information of the sampled points (all of them), NaN when they are too few."""
    from hpsearch.descriptors.mi import MIN_POINTS_KSG, mutual_information

    if len(features) < MIN_POINTS_KSG:
        return math.nan
    return mutual_information(features, ldos, n_points=len(features), seed=seed)


@dataclass(frozen=True)
class SettingResult:
    """The ACSD of one (rcut, twojmax) over the snapshots: mean, its std, per snapshot, time."""

    rcut: float
    twojmax: int
    acsd: float
    std: float
    n_components: int
    seconds: float
    per_snapshot: dict[str, float] = field(default_factory=dict)
    per_snapshot_std: dict[str, float] = field(default_factory=dict)
    #: mutual information I(descriptors; LDOS) in nats at the same sampled points (mean over
    #: snapshots; larger is better; NaN when too few points), see :mod:`hpsearch.descriptors.mi`
    mi: float = math.nan
    per_snapshot_mi: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A name for logs and MLflow, e.g. ``rcut4.677_j10``."""
        return f"rcut{self.rcut:.4g}_j{self.twojmax}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SettingResult:
        return cls(**data)


def acsd_for_setting(
    snapshots: Sequence[SampledSnapshot],
    settings: SnapSettings,
    mode: AcsdMode = "abs",
    seed: int = 0,
    n_bootstrap: int = 500,
) -> SettingResult:
    """ACSD (mean over snapshots) of one descriptor setting; std = sqrt(sum std_k^2) / K."""
    if not snapshots:
        raise DataError("the scan needs at least one snapshot")
    start = time.perf_counter()
    values: dict[str, float] = {}
    stds: dict[str, float] = {}
    mis: dict[str, float] = {}
    for snap in snapshots:
        features = snap_at_points(snap.atoms, snap.points_angstrom, **settings.model_dump())
        values[snap.name], stds[snap.name] = _acsd_and_std(features, snap.ldos, mode, seed, n_bootstrap)
        mis[snap.name] = _mi_or_nan(features, snap.ldos, seed)
    k = len(snapshots)
    result = SettingResult(
        rcut=settings.rcut,
        twojmax=settings.twojmax,
        acsd=float(np.mean(list(values.values()))),
        std=float(math.sqrt(sum(s * s for s in stds.values())) / k),
        n_components=settings.n_components,
        seconds=time.perf_counter() - start,
        per_snapshot=values,
        per_snapshot_std=stds,
        mi=float(np.mean(list(mis.values()))),
        per_snapshot_mi=mis,
    )
    logger.info("ACSD %s: %.5f +- %.5f, MI %.3f nats (%.2f s)", result.key, result.acsd, result.std, result.mi,
                result.seconds)
    return result


# --------------------------------------------------------------------------- the scan


def _use_ray(parallel: Parallel, n_settings: int) -> bool:
    """Whether the scan runs on Ray ('ray' without Ray installed: ImportError saying what to do)."""
    from hpsearch.parallel import ray_installed

    if parallel == "serial" or (parallel == "auto" and n_settings < 2):
        return False
    if ray_installed():
        return True
    if parallel == "ray":
        raise ImportError("parallel: ray needs Ray: pip install 'ray[default]' (or parallel: serial)")
    logger.info("Ray is not installed: computing the scan serially")
    return False


def run_scan(
    snapshots: Sequence[SampledSnapshot],
    grid: Sequence[SnapSettings],
    mode: AcsdMode = "abs",
    seed: int = 0,
    n_bootstrap: int = 500,
    parallel: Parallel = "auto",
    num_cpus: int | None = None,
    on_result: Callable[[SettingResult], None] | None = None,
) -> list[SettingResult]:
    """The ACSD of every setting of ``grid`` (results in grid order), one Ray task per setting.

    ``parallel``: "auto" uses Ray when it is installed and there are two or more settings
    (starting a local Ray with ``num_cpus`` if none runs, and stopping it afterwards); "ray"
    insists; "serial" computes in this process. The values do not depend on this choice.
    """
    if not grid:
        raise ConfigError("the scan grid is empty: give at least one rcut and one twojmax")
    options = (mode, seed, n_bootstrap)
    if not _use_ray(parallel, len(grid)):
        results = []
        for settings in grid:
            results.append(acsd_for_setting(snapshots, settings, *options))
            if on_result is not None:
                on_result(results[-1])
        return results
    from hpsearch.parallel import map_chunks, ray_session

    def report(_: int, done: list[SettingResult]) -> None:
        if on_result is not None:
            on_result(done[0])

    logger.info("ACSD scan: %d settings as Ray tasks", len(grid))
    with ray_session(num_cpus=num_cpus, log_to_driver=False):
        per_setting = map_chunks(_settings_task, [[settings] for settings in grid], (list(snapshots), options),
                                 on_chunk=report)
    return [results[0] for results in per_setting]


def _settings_task(
    grid: list[SnapSettings], shared: tuple[list[SampledSnapshot], tuple[AcsdMode, int, int]]
) -> list[SettingResult]:
    """One Ray task of :func:`run_scan`: the ACSD of its settings."""
    snapshots, options = shared
    return [acsd_for_setting(snapshots, settings, *options) for settings in grid]


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class Choice:
    """The chosen setting, the strict minimum, and every setting counted as reaching it."""

    rcut: float
    twojmax: int
    acsd: float
    std: float
    minimum_rcut: float
    minimum_twojmax: int
    minimum_acsd: float
    tied: tuple[tuple[float, int], ...]
    tie_sigma: float
    rule: str = RULE

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tied": [list(t) for t in self.tied]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        return cls(**{**data, "tied": tuple((float(r), int(j)) for r, j in data["tied"])})


def choose_descriptors(results: Sequence[SettingResult], tie_sigma: float = 0.0) -> Choice:
    """The paper's rule: the largest rcut and smallest twojmax at which the ACSD is minimal.

    A setting reaches the minimum when ``acsd <= min + tie_sigma * sqrt(std^2 + std_min^2)``
    (exact ties always do). Among those, the smallest twojmax wins (fewest components: the
    data footprint), then the largest rcut (the most physically informed descriptors).
    """
    finite = [r for r in results if math.isfinite(r.acsd)]
    if not finite:
        raise DataError(f"no finite ACSD among {len(results)} settings: nothing to choose from")
    if tie_sigma < 0:
        raise ConfigError(f"tie_sigma must be >= 0, got {tie_sigma}")
    best = min(finite, key=lambda r: (r.acsd, r.twojmax, -r.rcut))

    def reaches(r: SettingResult) -> bool:
        return r.acsd <= best.acsd + tie_sigma * math.hypot(r.std, best.std)

    tied = sorted((r for r in finite if reaches(r)), key=lambda r: (r.twojmax, -r.rcut))
    chosen = tied[0]
    return Choice(
        rcut=chosen.rcut,
        twojmax=chosen.twojmax,
        acsd=chosen.acsd,
        std=chosen.std,
        minimum_rcut=best.rcut,
        minimum_twojmax=best.twojmax,
        minimum_acsd=best.acsd,
        tied=tuple((r.rcut, r.twojmax) for r in tied),
        tie_sigma=tie_sigma,
    )
