"""Streamed shards: a split larger than the memory budget is read chunk by chunk, never held whole.

Below the budget a study keeps the split in Ray's object store (``hpsearch.tune.shards``). Above
it, :func:`choose_streaming` says so (and logs why) and one :class:`StreamActor` per node serves
point ranges read from the store file on request: its memory holds one chunk being read, the
object store the few chunks trials have asked for and not yet used. Trials read through an
:class:`ActorReader` into a :class:`~hpsearch.model.streaming.StreamedData`, which prefetches the
next chunks while training on the current one. The actor computes the training moments (for the
scalers) in one streamed pass, block by block, bit for bit as the in-memory path does.

The automatic budget is half the object-store memory of the smallest node: the in-memory path puts
the whole split there (every trial on the node maps it), and the rest is left for chunks,
results and other stores.

Example (driver)::

    streamed, split_gb, budget_gb = choose_streaming(store, split, memory_budget_gb=None)
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.data.splits import Split
from hpsearch.errors import ConfigError, DataError
from hpsearch.model.scaling import MOMENT_BLOCK_ROWS, streamed_pair_moments
from hpsearch.model.sources import chunk_ranges
from hpsearch.model.streaming import StoreReader, StreamedData, StreamedSnapshot

__all__ = ["ActorReader", "StreamActor", "choose_streaming", "default_budget_bytes", "split_nbytes",
           "stream_actor", "streamed_training_data"]

log = logging.getLogger(__name__)

_GB = 1e9
_BUDGET_SHARE_OF_OBJECT_STORE = 0.5


def split_nbytes(store_path: str | Path, split: Split) -> int:
    """Bytes the split takes in memory as float32 (train, validation and test), from metadata only."""
    from hpsearch.data.store import open_store

    with open_store(store_path) as store:
        first = store.read_rows(split.train[0], 0, 1)
        per_point = 4 * (first[0].shape[1] + first[1].shape[1])
        return sum(store.n_points(n) * per_point for n in (*split.train, *split.validation, *split.test))


def default_budget_bytes() -> int:
    """Half the object-store memory of the smallest alive Ray node (see the module docstring)."""
    import ray

    stores = [float(n["Resources"].get("object_store_memory", 0.0)) for n in ray.nodes() if n.get("Alive")]
    stores = [s for s in stores if s > 0]
    if not stores:
        raise ConfigError("no Ray node reports object_store_memory: set dataset.memory_budget_gb explicitly")
    return int(_BUDGET_SHARE_OF_OBJECT_STORE * min(stores))


def choose_streaming(store_path: str | Path, split: Split, memory_budget_gb: float | None) -> tuple[bool, float, float]:
    """(stream?, split size in GB, budget in GB): stream when the split exceeds the budget; logged."""
    size = split_nbytes(store_path, split) / _GB
    budget = memory_budget_gb if memory_budget_gb is not None else default_budget_bytes() / _GB
    streamed = size > budget
    source = "dataset.memory_budget_gb" if memory_budget_gb is not None else "half the smallest object store"
    log.info("data path: %s: the split takes %.3f GB in memory, the budget is %.3f GB (%s)",
             "streamed chunk by chunk" if streamed else "in memory (object store)", size, budget, source)
    return streamed, size, budget


class StreamActor:
    """Serves point ranges of a split's snapshots from the store file (run as a Ray actor).

    The constructor stores its arguments; the store is opened on the first request and kept open.
    """

    def __init__(self, store_path: str, split: dict[str, list[str]]) -> None:
        self.store_path = store_path
        self.split = Split.from_dict(split)
        self.n_reads = 0
        self.bytes_read = 0
        self._reader: StoreReader | None = None
        self._layout: dict[str, Any] | None = None

    def _open(self) -> StoreReader:
        if self._reader is None:
            reader = StoreReader(self.store_path)
            names = (*self.split.train, *self.split.validation, *self.split.test)
            missing = [n for n in names if n not in reader.names]
            if missing:
                raise DataError(f"snapshots {missing} are not in store {self.store_path}")
            self._reader = reader
        return self._reader

    def read(self, names: tuple[str, ...], start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Points ``start:stop`` of ``names`` concatenated (float32 arrays; may span snapshots)."""
        x, y = self._open().request(tuple(names), start, stop)
        self.n_reads += 1
        self.bytes_read += x.nbytes + y.nbytes
        return x, y

    def layout(self) -> dict[str, Any]:
        """Sizes, feature counts, training moments (one streamed pass, done once) and test metadata."""
        if self._layout is None:
            t0 = time.perf_counter()
            reader = self._open()
            train = tuple(self.split.train)
            n_train = sum(reader.size(n) for n in train)
            blocks = (self.read(train, a, b) for a, b in chunk_ranges(n_train, MOMENT_BLOCK_ROWS))
            x_moments, y_moments = streamed_pair_moments(blocks)
            x0, y0 = self.read(train, 0, 1)
            self._layout = {
                "n_train": n_train, "n_val": sum(reader.size(n) for n in self.split.validation),
                "n_features": int(x0.shape[1]), "n_energies": int(y0.shape[1]), "moments": (x_moments, y_moments),
                "test": [reader.metadata(n) for n in self.split.test],
                "validation": [reader.metadata(n) for n in self.split.validation],
            }
            log.info("stream layout of %s: %d training points, moments in %.2f s", self.store_path, n_train,
                     time.perf_counter() - t0)
        return self._layout

    def info(self) -> dict[str, Any]:
        """Node, process, reads served and bytes read (to check that nothing is held whole)."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "n_reads": self.n_reads, "bytes_read": self.bytes_read}


@functools.cache
def _remote_stream_class() -> Any:
    import ray

    # restartable like the shard actors; a few concurrent requests so that one trial's prefetch
    # does not queue behind another's (HDF5 reads themselves are serialised by h5py)
    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=4)(StreamActor)


def stream_actor(name: str, node_id: str, store_path: str | Path, split: Split) -> Any:
    """The named stream actor of (store, split) on ``node_id``; started if absent."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from hpsearch.tune.shards import NAMESPACE

    return _remote_stream_class().options(
        name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
    ).remote(str(Path(store_path).resolve()), split.to_dict())


class ActorReader:
    """The :class:`~hpsearch.model.streaming.ChunkReader` of a trial: requests to a stream actor."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def request(self, names: tuple[str, ...], start: int, stop: int) -> Any:
        return self.handle.read.remote(names, start, stop)

    def result(self, handle: Any) -> tuple[np.ndarray, np.ndarray]:
        import ray

        x, y = ray.get(handle)
        return x, y


def streamed_training_data(handle: Any, split: Split, store_path: str, chunk_points: int, prefetch: int,
                           device: Any) -> StreamedData:
    """The trial's :class:`StreamedData` served by the stream actor ``handle``."""
    import ray

    layout = ray.get(handle.layout.remote())
    reader = ActorReader(handle)
    test, validation = ([StreamedSnapshot(reader=reader, n_energies=layout["n_energies"], **meta) for meta in layout[part]]
                        for part in ("test", "validation"))
    return StreamedData(
        reader=reader, train_names=tuple(split.train), validation_names=tuple(split.validation),
        n_train_points=layout["n_train"], n_val_points=layout["n_val"], n_features=layout["n_features"],
        n_energies=layout["n_energies"], train_moments=layout["moments"], chunk_points=chunk_points,
        prefetch=prefetch, test=test, validation_snapshots=validation, device=device, source=store_path,
    )
