"""Streamed training data: the split read chunk by chunk from where it is stored, never held whole.

:class:`StreamedData` is the :class:`~hpsearch.model.sources.PointSource` for splits larger than a
node's memory budget. It asks a :class:`ChunkReader` (in a study: the node's shard actor, see
``hpsearch.tune.streaming``) for point ranges of the concatenated training or validation
snapshots, ``prefetch`` ranges ahead of the one being trained on, so reading overlaps training.
Training visits the ranges in the seeded chunk order of :func:`~hpsearch.model.sources.chunk_plan`
and gives exactly the losses of the in-memory path with the same ``chunk_points``.

On a CUDA device each chunk goes through one of two pinned host buffers and is copied with
``non_blocking=True`` on a side stream while the previous chunk is still being trained on
(double buffering); on the CPU the reader's arrays are used in place (zero-copy).

Example:
    >>> data = StreamedData(reader, layout, chunk_points=1 << 16)
    >>> train(spec, settings, data)          # the same loop as for TrainingData
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from hpsearch.errors import DataError
from hpsearch.model.data import as_tensor
from hpsearch.model.scaling import Moments, Scalers, ScalingMode
from hpsearch.model.sources import batches_from_chunks, chunk_plan, chunk_ranges, gather_rows, validation_sample_rows

if TYPE_CHECKING:
    from hpsearch.data.splits import Split

__all__ = ["ChunkReader", "StoreReader", "StreamedData", "StreamedSnapshot", "stream_chunks"]

Arrays = tuple[np.ndarray, np.ndarray]


class ChunkReader(Protocol):
    """Where streamed points come from: ``request`` starts a read, ``result`` waits for it."""

    def request(self, names: tuple[str, ...], start: int, stop: int) -> Any:
        """Start reading points ``start:stop`` of the snapshots ``names`` concatenated; a handle."""
        ...

    def result(self, handle: Any) -> Arrays:
        """``(descriptors, ldos)`` float32 arrays of a request (blocks until read)."""
        ...


class _CudaStager:
    """Host arrays -> CUDA tensors through two pinned buffers, copied on a side stream."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.pinned: list[tuple[torch.Tensor, torch.Tensor] | None] = [None, None]
        self.done: list[torch.cuda.Event | None] = [None, None]
        self.count = 0

    def _buffers(self, slot: int, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        held = self.pinned[slot]
        if held is None or held[0].shape[0] < x.shape[0]:
            held = (torch.empty(x.shape, dtype=torch.float32).pin_memory(),
                    torch.empty(y.shape, dtype=torch.float32).pin_memory())
            self.pinned[slot] = held
        return held[0][: x.shape[0]], held[1][: y.shape[0]]

    def __call__(self, arrays: Arrays) -> tuple[torch.Tensor, torch.Tensor]:
        slot, self.count = self.count % 2, self.count + 1
        event = self.done[slot]
        if event is not None:
            event.synchronize()  # the copy that last read this pinned buffer has finished
        host_x, host_y = self._buffers(slot, *arrays)
        host_x.copy_(as_tensor(arrays[0]))
        host_y.copy_(as_tensor(arrays[1]))
        with torch.cuda.stream(self.stream):
            x = host_x.to(self.device, non_blocking=True)
            y = host_y.to(self.device, non_blocking=True)
            self.done[slot] = torch.cuda.Event()
            self.done[slot].record(self.stream)  # type: ignore[union-attr]
        compute = torch.cuda.current_stream(self.device)
        compute.wait_stream(self.stream)  # kernels on this chunk start after its copy
        x.record_stream(compute)
        y.record_stream(compute)
        return x, y


def _stager(device: torch.device) -> Callable[[Arrays], tuple[torch.Tensor, torch.Tensor]]:
    if device.type == "cuda":
        return _CudaStager(device)
    return lambda arrays: (as_tensor(arrays[0], None if device.type == "cpu" else device),
                           as_tensor(arrays[1], None if device.type == "cpu" else device))


def stream_chunks(reader: ChunkReader, names: tuple[str, ...], ranges: Iterable[tuple[int, int]],
                  device: torch.device, prefetch: int = 2) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The point ranges of ``names`` as tensors on ``device``, in order, ``prefetch`` reads ahead;
    on CUDA the next chunk's copy is started before the current one is handed out.

    Memory: ``prefetch + 2`` chunks at most are held at once (read ahead, in use, last one).
    """
    ranges = iter(ranges)
    pending: deque[Any] = deque()

    def ask() -> None:
        span = next(ranges, None)
        if span is not None:
            pending.append(reader.request(names, *span))

    for _ in range(max(prefetch, 0) + 1):
        ask()
    stage = _stager(device)
    ahead = device.type == "cuda"  # stage the next chunk's copy before handing out this one
    ready: tuple[torch.Tensor, torch.Tensor] | None = None
    while pending:
        handle = pending.popleft()
        ask()
        staged = stage(reader.result(handle))
        del handle  # the reader's buffer can go as soon as nothing maps it
        if not ahead:
            yield staged
            continue
        if ready is not None:
            yield ready
        ready = staged
    if ready is not None:
        yield ready


class StoreReader:
    """A :class:`ChunkReader` reading a store file in this process (synchronously: no prefetch).

    For streamed training outside a study, e.g. a retrain in a worker; keeps the file open.
    """

    def __init__(self, path: str | Path) -> None:
        from hpsearch.data.store import open_store

        self.path = Path(path)
        self._store = open_store(self.path)
        self._sizes: dict[str, int] = {}

    @property
    def names(self) -> list[str]:
        """Snapshot names in the store."""
        return self._store.names

    def close(self) -> None:
        """Close the store file (reads after this fail)."""
        self._store.close()

    def size(self, name: str) -> int:
        if name not in self._sizes:
            self._sizes[name] = self._store.n_points(name)
        return self._sizes[name]

    def request(self, names: tuple[str, ...], start: int, stop: int) -> Arrays:
        xs, ys, offset = [], [], 0
        for name in names:
            lo, hi = max(start - offset, 0), min(stop - offset, self.size(name))
            if lo < hi:
                x, y = self._store.read_rows(name, lo, hi)
                xs.append(x)
                ys.append(y)
            offset += self.size(name)
        if not xs:
            raise DataError(f"rows {start}:{stop} are outside the {offset} points of {list(names)} in {self.path}")
        return (xs[0], ys[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(ys))

    def result(self, handle: Arrays) -> Arrays:
        return handle

    def metadata(self, name: str) -> dict[str, Any]:
        from hpsearch.model.data import snapshot_metadata

        return {**snapshot_metadata(self._store, name), "n_points": self.size(name)}


@dataclasses.dataclass
class StreamedSnapshot:
    """A whole evaluation snapshot read through the reader in chunks (never held whole)."""

    reader: ChunkReader = dataclasses.field(repr=False)
    name: str
    n_points: int
    n_energies: int
    energy_grid: Any
    voxel_volume_angstrom3: float
    n_electrons: float
    n_atoms: int
    temperature_k: float

    def chunks(self, size: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return stream_chunks(self.reader, (self.name,), chunk_ranges(self.n_points, size), torch.device(device))


@dataclasses.dataclass
class StreamedData:
    """Training/validation points streamed from a :class:`ChunkReader` (see the module docstring).

    ``train_moments``: the (descriptor, LDOS) moments of the training points, computed where the
    data are (scalers need them before the first batch and the split is never held).
    """

    reader: ChunkReader = dataclasses.field(repr=False)
    train_names: tuple[str, ...]
    validation_names: tuple[str, ...]
    n_train_points: int
    n_val_points: int
    n_features: int
    n_energies: int
    train_moments: tuple[Moments, Moments] = dataclasses.field(repr=False)
    chunk_points: int = 1 << 16
    prefetch: int = 2
    test: list[StreamedSnapshot] = dataclasses.field(default_factory=list)
    #: the validation snapshots whole, for band-energy errors on them (read in chunks like ``test``)
    validation_snapshots: list[StreamedSnapshot] = dataclasses.field(default_factory=list)
    device: torch.device = torch.device("cpu")
    source: str = ""
    _scalers: dict[tuple[str, str], Scalers] = dataclasses.field(default_factory=dict, repr=False)
    #: fixed validation subsamples read so far, by size (held in memory: see :meth:`validation_sample`)
    _validation_samples: dict[int, tuple[torch.Tensor, torch.Tensor]] = dataclasses.field(default_factory=dict,
                                                                                          repr=False)

    def __post_init__(self) -> None:
        if self.n_train_points < 1 or self.n_val_points < 1:
            raise DataError(f"streamed split has {self.n_train_points} training and {self.n_val_points} "
                            "validation points: each part needs at least one snapshot")
        if self.chunk_points < 1 or self.prefetch < 0:
            raise DataError(f"chunk_points={self.chunk_points} must be >= 1 and prefetch={self.prefetch} >= 0")

    def scalers(self, descriptor_mode: ScalingMode = "feature-standard", ldos_mode: ScalingMode = "minmax") -> Scalers:
        """Scalers from the training moments, once per mode pair, on :attr:`device`."""
        key = (descriptor_mode, ldos_mode)
        if key not in self._scalers:
            self._scalers[key] = Scalers(descriptor_mode, ldos_mode).fit_moments(*self.train_moments).to(self.device)
        return self._scalers[key]

    def to(self, device: torch.device | str) -> StreamedData:
        """The same stream delivering to ``device`` (nothing is moved: chunks go there as read)."""
        device = torch.device(device)
        if device == self.device:
            return self
        return dataclasses.replace(self, device=device, _scalers={}, _validation_samples={})

    def _stream(self, names: tuple[str, ...], ranges: Iterable[tuple[int, int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return stream_chunks(self.reader, names, ranges, self.device, self.prefetch)

    def train_batches(self, batch_size: int, generator: torch.Generator,
                      n_points: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch in the chunked order; ``n_points``: only the first ranges of the plan holding
        that many points are read (the last cut short), the in-memory chunked subsample."""
        plan = chunk_plan(self.n_train_points, self.chunk_points, generator, n_points)
        return batches_from_chunks(self._stream(self.train_names, plan), batch_size, generator)

    def validation_chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self._stream(self.validation_names, chunk_ranges(self.n_val_points, self.chunk_points))

    def validation_sample(self, n_points: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The fixed validation subsample (the same points as the in-memory path), read in one
        streamed pass on first use and then held: ``n_points`` x (features + energies) float32,
        so later epochs read nothing. None when ``n_points`` covers every validation point."""
        if n_points not in self._validation_samples:
            rows = validation_sample_rows(self.n_val_points, n_points)
            if rows is None:
                return None
            self._validation_samples[n_points] = gather_rows(self.validation_chunks(), rows)
        return self._validation_samples[n_points]

    @classmethod
    def from_store(cls, path: str | Path, split: Split, chunk_points: int = 1 << 16,
                   device: torch.device | str = "cpu") -> StreamedData:
        """The split streamed from a store file in this process (moments in one streamed pass)."""
        from hpsearch.model.scaling import MOMENT_BLOCK_ROWS, streamed_pair_moments

        reader = StoreReader(path)
        train, val = tuple(split.train), tuple(split.validation)
        n_train = sum(reader.size(n) for n in train)
        moments = streamed_pair_moments(reader.request(train, a, b) for a, b in chunk_ranges(n_train, MOMENT_BLOCK_ROWS))
        x0, y0 = reader.request(train, 0, 1)
        whole = {n: StreamedSnapshot(reader=reader, n_energies=int(y0.shape[1]), **reader.metadata(n))
                 for n in (*split.validation, *split.test)}
        return cls(reader=reader, train_names=train, validation_names=val, n_train_points=n_train,
                   n_val_points=sum(reader.size(n) for n in val), n_features=int(x0.shape[1]),
                   n_energies=int(y0.shape[1]), train_moments=moments, chunk_points=chunk_points,
                   test=[whole[n] for n in split.test], validation_snapshots=[whole[n] for n in val],
                   device=torch.device(device), source=str(path))

    def train_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Descriptors of single training points, each read on its own (for small batches: NASWOT)."""
        handles = [self.reader.request(self.train_names, int(r), int(r) + 1) for r in rows.tolist()]
        return torch.cat([as_tensor(self.reader.result(h)[0]) for h in handles]).to(self.device)
