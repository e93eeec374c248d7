"""Training data of one trial: grid points of the training and validation snapshots as tensors.

Points are flattened over the real-space grid and concatenated over snapshots (the split is by
snapshot, never by grid point). Validation snapshots are also available whole, as views of the
validation points with the metadata the band energy needs (:attr:`TrainingData.validation_snapshots`):
trials are scored on them. Test snapshots are whole and separate; a search never loads them
(its data are built from a split without test snapshots), only the winner's retrains do.
Tensors are unscaled float32; scaling happens on the fly in training and evaluation, so the
arrays can be zero-copy views of shared memory (Ray's object store).

Example:
    >>> data = TrainingData.from_store("be2.h5", split_snapshots(names, 2, 1, 1))
    >>> data.x_train.shape  # (points, features)
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpsearch.errors import DataError
from hpsearch.model.scaling import Moments, Scalers, ScalingMode
from hpsearch.model.sources import chunked_permutation, validation_sample_rows

if TYPE_CHECKING:
    from hpsearch.data.splits import Split
    from hpsearch.physics import EnergyGrid

__all__ = ["TestSnapshot", "TrainingData", "as_tensor", "load_snapshots", "read_points", "snapshot_metadata"]

log = logging.getLogger(__name__)


def as_tensor(array: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """A float32 tensor sharing memory with ``array`` where possible (also read-only arrays)."""
    if isinstance(array, torch.Tensor):
        tensor = array
    else:
        with warnings.catch_warnings():
            # Arrays from Ray's object store are read-only; training never writes into them.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensor = torch.from_numpy(np.ascontiguousarray(array))
    tensor = tensor.to(dtype=torch.float32)
    return tensor if device is None else tensor.to(device)


@dataclasses.dataclass
class TestSnapshot:
    """One whole snapshot (validation or test): its points and what the band energy needs (physical units)."""

    __test__ = False  # not a pytest test class

    name: str
    descriptors: torch.Tensor = dataclasses.field(repr=False)  # (points, features), unscaled
    ldos: torch.Tensor = dataclasses.field(repr=False)  # (points, energies), reference LDOS
    energy_grid: EnergyGrid
    voxel_volume_angstrom3: float
    n_electrons: float
    n_atoms: int
    temperature_k: float

    @property
    def n_points(self) -> int:
        return int(self.descriptors.shape[0])

    @property
    def n_energies(self) -> int:
        return int(self.ldos.shape[1])

    def chunks(self, size: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Consecutive ``(descriptors, ldos)`` slices of at most ``size`` points, moved to ``device``."""
        for start in range(0, self.n_points, size):
            yield self.descriptors[start : start + size].to(device), self.ldos[start : start + size].to(device)

    def to(self, device: torch.device | str) -> TestSnapshot:
        return dataclasses.replace(self, descriptors=self.descriptors.to(device), ldos=self.ldos.to(device))


@dataclasses.dataclass
class TrainingData:
    """Training/validation points and test snapshots of one split; unscaled float32 tensors."""

    x_train: torch.Tensor = dataclasses.field(repr=False)
    y_train: torch.Tensor = dataclasses.field(repr=False)
    x_val: torch.Tensor = dataclasses.field(repr=False)
    y_val: torch.Tensor = dataclasses.field(repr=False)
    test: list[TestSnapshot] = dataclasses.field(default_factory=list)
    train_names: tuple[str, ...] = ()
    validation_names: tuple[str, ...] = ()
    source: str = ""
    #: (descriptor, LDOS) :func:`~hpsearch.model.scaling.feature_moments` of the training points,
    #: when known already (a shard actor computes them once): scalers then need no data pass.
    train_moments: tuple[Moments, Moments] | None = dataclasses.field(default=None, repr=False)
    #: Epoch order: None shuffles all training points at once; a number of points uses the
    #: chunk-shuffled order of :func:`~hpsearch.model.sources.chunk_plan`, as the streamed path does.
    chunk_points: int | None = None
    _scalers: dict[tuple[str, str], Scalers] = dataclasses.field(default_factory=dict, repr=False)
    #: fixed validation subsamples already drawn, by size (see :meth:`validation_sample`)
    _validation_samples: dict[int, tuple[torch.Tensor, torch.Tensor]] = dataclasses.field(default_factory=dict,
                                                                                          repr=False)
    #: per validation snapshot, in order: :func:`snapshot_metadata` plus ``n_points`` (its rows of
    #: ``x_val``); empty when unknown (then no validation band-energy error can be computed)
    validation_meta: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for label, x, y in (("training", self.x_train, self.y_train), ("validation", self.x_val, self.y_val)):
            if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
                raise DataError(
                    f"{label} descriptors {tuple(x.shape)} and LDOS {tuple(y.shape)} must be 2-D "
                    "with the same number of points"
                )
            if x.shape[0] == 0:
                raise DataError(f"the {label} set has no points: give it at least one snapshot")
        if self.x_val.shape[1] != self.x_train.shape[1] or self.y_val.shape[1] != self.y_train.shape[1]:
            raise DataError(
                f"validation features {self.x_val.shape[1]}/{self.y_val.shape[1]} differ from training "
                f"{self.x_train.shape[1]}/{self.y_train.shape[1]}: snapshots come from different stores?"
            )
        counted = sum(int(m["n_points"]) for m in self.validation_meta)
        if self.validation_meta and counted != self.x_val.shape[0]:
            raise DataError(f"validation snapshots {[m['name'] for m in self.validation_meta]} hold {counted} "
                            f"points but the validation set has {self.x_val.shape[0]}")

    @property
    def validation_snapshots(self) -> list[TestSnapshot]:
        """The validation snapshots whole (views of ``x_val``/``y_val``): what trials are scored on."""
        if not self.validation_meta:
            raise DataError("the validation snapshots' metadata is unknown: build the data with "
                            "TrainingData.from_store or the shard actors")
        snapshots, start = [], 0
        for meta in self.validation_meta:
            stop = start + int(meta["n_points"])
            fields = {k: v for k, v in meta.items() if k != "n_points"}
            snapshots.append(TestSnapshot(descriptors=self.x_val[start:stop], ldos=self.y_val[start:stop], **fields))
            start = stop
        return snapshots

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_energies(self) -> int:
        return int(self.y_train.shape[1])

    @property
    def n_train_points(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_val_points(self) -> int:
        return int(self.x_val.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def train_batches(self, batch_size: int, generator: torch.Generator,
                      n_points: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of unscaled mini-batches: a seeded permutation of all points, or the chunked
        order (see ``chunk_points``); ``generator`` lives on :attr:`device`. ``n_points`` (fewer
        than all): only the first ``n_points`` of that order, a seeded subsample without replacement."""
        x, y = self.x_train, self.y_train
        if self.chunk_points is None:
            perm = torch.randperm(x.shape[0], generator=generator, device=x.device)
            if n_points is not None and n_points < perm.shape[0]:
                perm = perm[:n_points]
        else:
            perm = chunked_permutation(x.shape[0], self.chunk_points, generator, n_points).to(x.device)
        for start in range(0, perm.shape[0], batch_size):
            idx = perm[start : start + batch_size]
            yield x.index_select(0, idx), y.index_select(0, idx)

    def validation_chunks(self, size: int = 1 << 16) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every validation point once, in order, ``size`` at a time (views, no copies)."""
        for start in range(0, self.x_val.shape[0], size):
            yield self.x_val[start : start + size], self.y_val[start : start + size]

    def validation_sample(self, n_points: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The fixed validation subsample of ``n_points`` points (copies, kept); None: all points."""
        if n_points not in self._validation_samples:
            rows = validation_sample_rows(self.n_val_points, n_points)
            if rows is None:
                return None
            rows = rows.to(self.x_val.device)
            self._validation_samples[n_points] = (self.x_val.index_select(0, rows), self.y_val.index_select(0, rows))
        return self._validation_samples[n_points]

    def train_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Unscaled descriptors of the training points ``rows``."""
        return self.x_train[rows.to(self.x_train.device)]

    def scalers(
        self, descriptor_mode: ScalingMode = "feature-standard", ldos_mode: ScalingMode = "minmax"
    ) -> Scalers:
        """Scalers fitted on the training points, computed once per mode pair and kept."""
        key = (descriptor_mode, ldos_mode)
        if key not in self._scalers:
            scalers = Scalers(descriptor_mode, ldos_mode)
            if self.train_moments is not None:
                scalers.fit_moments(*self.train_moments)
            else:
                scalers.fit(self.x_train, self.y_train)
            self._scalers[key] = scalers.to(self.device)
        return self._scalers[key]

    def to(self, device: torch.device | str) -> TrainingData:
        """A copy on ``device`` (the same object when already there); fitted scalers are kept."""
        if torch.device(device) == self.device:
            return self
        moved = dataclasses.replace(
            self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
            x_val=self.x_val.to(device), y_val=self.y_val.to(device),
            test=[t.to(device) for t in self.test], _scalers={}, _validation_samples={},
        )
        for key, scalers in self._scalers.items():
            moved._scalers[key] = Scalers.from_state_dict(scalers.state_dict()).to(device)
        return moved

    @classmethod
    def from_store(
        cls, path: str | Path, split: Split, device: torch.device | str | None = None
    ) -> TrainingData:
        """Read the split's snapshots from a store (once; a trial should use the shard actor)."""
        from hpsearch.data.store import open_store

        with open_store(path) as store:
            missing = sorted(set(split.train) | set(split.validation) | set(split.test))
            missing = [n for n in missing if n not in set(store.names)]
            if missing:
                raise DataError(f"snapshots {missing} are not in store {path}: it holds {store.names}")
            x_train, y_train = read_points(store, split.train)
            x_val, y_val = read_points(store, split.validation)
            validation_meta = tuple(validation_metadata(store, split.validation))
            test = [_test_snapshot(store, name) for name in split.test]
        log.info("loaded %d training and %d validation points from %s", len(x_train), len(x_val), path)
        data = cls(
            as_tensor(x_train), as_tensor(y_train), as_tensor(x_val), as_tensor(y_val), test,
            tuple(split.train), tuple(split.validation), str(path), validation_meta=validation_meta,
        )
        return data if device is None else data.to(device)


def read_points(store: Any, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors and LDOS of ``names`` flattened to (points, features) and concatenated."""
    xs, ys = [], []
    for name in names:
        x, y = store.read_arrays(name)
        xs.append(np.asarray(x, dtype=np.float32).reshape(-1, x.shape[-1]))
        ys.append(np.asarray(y, dtype=np.float32).reshape(-1, y.shape[-1]))
    if not xs:
        raise DataError("no snapshots given: every split part needs at least one snapshot")
    if len(xs) == 1:
        return xs[0], ys[0]
    return np.concatenate(xs), np.concatenate(ys)


def snapshot_metadata(store: Any, name: str) -> dict[str, Any]:
    """What evaluation needs of one snapshot besides its arrays (plain, picklable values)."""
    meta = store.metadata(name)
    return {
        "name": name,
        "energy_grid": meta.energy_grid,
        "voxel_volume_angstrom3": float(meta.voxel_volume_angstrom3),
        "n_electrons": float(meta.n_electrons),
        "n_atoms": int(meta.n_atoms),
        "temperature_k": float(meta.temperature_k),
    }


def validation_metadata(store: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`snapshot_metadata` of each of ``names`` with its number of grid points (``n_points``)."""
    return [{**snapshot_metadata(store, name), "n_points": int(np.prod(store.metadata(name).grid_shape))}
            for name in names]


def load_snapshots(path: str | Path, names: Sequence[str]) -> list[TestSnapshot]:
    """Whole snapshots read from a store: the winner's retrains read the test snapshots this way."""
    from hpsearch.data.store import open_store

    with open_store(path) as store:
        missing = [n for n in names if n not in set(store.names)]
        if missing:
            raise DataError(f"snapshots {missing} are not in store {path}: it holds {store.names}")
        return [_test_snapshot(store, name) for name in names]


def _test_snapshot(store: Any, name: str) -> TestSnapshot:
    x, y = read_points(store, [name])
    return TestSnapshot(descriptors=as_tensor(x), ldos=as_tensor(y), **snapshot_metadata(store, name))
