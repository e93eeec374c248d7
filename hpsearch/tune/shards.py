"""Data shards in Ray actors: a store is read from disk once per node and served to every trial.

A :class:`ShardActor` (``num_cpus=0``, named by store key and node, detached, in namespace
``hpsearch``) reads the snapshots of a split once, puts each array into Ray's object store once and
hands out the object references. A trial on the same node maps those arrays without copying
(NumPy is read zero-copy from the object store); its tensors are views of shared memory. On a
GPU, each worker process copies them to its device once. A worker keeps what it assembled in a
per-process cache (:data:`_CACHE`, keyed by store key, placement and device), so a reused worker
(``TuneConfig(reuse_actors=True)``) pays nothing, and a trial never opens the store itself.

Large stores can be split across actors on several nodes (:func:`place_shards`); a trial then
gathers every shard (Ray fetches remote ones into its node's object store once per node). A split
larger than the memory budget is not held at all: trials stream it chunk by chunk from a stream
actor on their node (``hpsearch.tune.streaming``).

Example (driver)::

    placement = place_shards(store, split)                 # one replica per node, loaded now
    print(placement.report())
    ... Tuner(trainable, ...).fit()                        # trials: get_training_data(store, split)
    release_shards()                                       # detached actors end here
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.data.splits import Split
from hpsearch.errors import ConfigError, DataError
from hpsearch.model.data import (
    TestSnapshot, TrainingData, as_tensor, read_points, snapshot_metadata, validation_metadata,
)
from hpsearch.model.scaling import feature_moments, merge_moments
from hpsearch.model.sources import PointSource

__all__ = [
    "NAMESPACE", "ShardActor", "ShardPlacement", "clear_cache", "get_training_data",
    "node_actor", "place_shards", "release_shards", "shard_key",
]

log = logging.getLogger(__name__)

NAMESPACE = "hpsearch"
_PREFIX = "hpsearch-shard"
_ROLES = ("train", "validation", "test")
_CACHE_SIZE = 4
#: The one piece of module state: per worker process, TrainingData already assembled, keyed by
#: (store key, placement, device); least recently used dropped beyond ``_CACHE_SIZE``.
_CACHE: OrderedDict[tuple[str, str, str], PointSource] = OrderedDict()


def shard_key(store_path: str | Path, split: Split) -> str:
    """Identity of (store file, split) from the path and file status: no read of the store."""
    path = Path(store_path).resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"store {path} cannot be read ({exc}): check the path") from exc
    ident = json.dumps([str(path), stat.st_size, stat.st_mtime_ns, split.to_dict()])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class ShardPlacement:
    """Where the snapshots of a split live: actor name -> (node id, snapshot names).

    ``replicated``: one actor per node holding the whole split (trials use their own node's).
    Picklable: hand it to trials (config or ``tune.with_parameters``).
    """

    key: str
    store_path: str
    split: Split
    actors: dict[str, tuple[str, tuple[str, ...]]]
    replicated: bool
    nbytes: dict[str, int] = dataclasses.field(default_factory=dict)  # actor name -> bytes held
    #: the split exceeds the memory budget: trials stream chunks from stream actors (one per node)
    streamed: bool = False
    chunk_points: int = 1 << 16
    prefetch: int = 2

    def by_node(self) -> dict[str, list[str]]:
        """Node id -> snapshot names held on that node."""
        nodes: dict[str, list[str]] = {}
        for node, names in self.actors.values():
            held = nodes.setdefault(node, [])
            held += [n for n in names if n not in held]
        return nodes

    def report(self) -> str:
        """One line per node: its snapshots and the megabytes its actors hold."""
        kind = "replicated on every node" if self.replicated else "sharded"
        if self.streamed:
            kind = f"streamed in chunks of {self.chunk_points} points, {self.prefetch} prefetched, one reader per node"
        megabytes: dict[str, float] = {}
        for name, (node, _) in self.actors.items():
            megabytes[node] = megabytes.get(node, 0.0) + self.nbytes.get(name, 0) / 1e6
        lines = [f"store {self.store_path} (key {self.key}), {kind}:"]
        lines += [f"  node {node[:12]}: {', '.join(names)} ({megabytes[node]:.1f} MB)"
                  for node, names in self.by_node().items()]
        return "\n".join(lines)


class ShardActor:
    """Holds the arrays of some snapshots of a split in Ray's object store (run as a Ray actor).

    The constructor only stores its arguments; the store is read on the first request, once.
    """

    def __init__(self, store_path: str, split: dict[str, list[str]], names: list[str] | None = None) -> None:
        self.store_path = store_path
        self.split = Split.from_dict(split)
        self.names = list(names) if names is not None else [*self.split.train, *self.split.validation,
                                                             *self.split.test]
        self.n_loads = 0
        self.nbytes = 0
        self._payload: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        import ray

        from hpsearch.data.store import open_store

        t0 = time.perf_counter()
        mine = set(self.names)
        payload: dict[str, Any] = {"train": None, "validation": None, "test": []}
        with open_store(self.store_path) as store:
            for role in ("train", "validation"):
                names = [n for n in getattr(self.split, role) if n in mine]
                if names:
                    x, y = read_points(store, names)
                    self.nbytes += x.nbytes + y.nbytes
                    payload[role] = {"names": names, "x": ray.put(x), "y": ray.put(y),
                                     "moments": (feature_moments(x), feature_moments(y)) if role == "train" else None,
                                     "snapshots": validation_metadata(store, names) if role == "validation" else []}
            for name in (n for n in self.split.test if n in mine):
                x, y = read_points(store, [name])
                self.nbytes += x.nbytes + y.nbytes
                payload["test"].append({"x": ray.put(x), "y": ray.put(y), **snapshot_metadata(store, name)})
        self.n_loads += 1
        log.info("shard of %s loaded: %d snapshots, %.1f MB in %.2f s", self.store_path, len(self.names),
                 self.nbytes / 1e6, time.perf_counter() - t0)
        return payload

    def payload(self) -> dict[str, Any]:
        """Object references of the arrays (loaded on first call) and the small metadata."""
        if self._payload is None:
            self._payload = self._load()
        return self._payload

    def info(self) -> dict[str, Any]:
        """Node, process, snapshot names, how often the store was read (1 after loading) and bytes held."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "names": self.names,
                "n_loads": self.n_loads, "nbytes": self.nbytes, "loaded": self._payload is not None}


@functools.cache
def _remote_actor_class() -> Any:
    import ray

    # restartable: a lost actor process is recreated (it reloads its shard from the store) and
    # calls waiting on it are retried instead of failing the trials
    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(ShardActor)


def _require_ray() -> Any:
    import ray

    if not ray.is_initialized():
        raise ConfigError("Ray is not running: call ray.init() (or ray.init(address='auto')) first")
    return ray


def _start_actor(name: str, node_id: str, store_path: str, split: Split, names: list[str] | None) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return _remote_actor_class().options(
        name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
    ).remote(str(Path(store_path).resolve()), split.to_dict(), names)


def node_actor(store_path: str | Path, split: Split, node_id: str | None = None) -> Any:
    """The replica actor of (store, split) on ``node_id`` (default: this process's node); started if absent."""
    ray = _require_ray()
    node_id = node_id or ray.get_runtime_context().get_node_id()
    key = shard_key(store_path, split)
    return _start_actor(f"{_PREFIX}-{key}-{node_id[:16]}", node_id, str(store_path), split, None)


def _alive_nodes(ray: Any) -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]


def place_shards(
    store_path: str | Path, split: Split, nodes: list[str] | None = None,
    n_shards: int | None = None, replicate: bool | None = None,
    memory_budget_gb: float | None = None, chunk_points: int = 1 << 16, prefetch: int = 2,
) -> ShardPlacement:
    """Start the data actors and load them now; returns where each snapshot lives.

    By default one replica of the whole split per node (``nodes``: all alive nodes). With
    ``replicate=False`` (or ``n_shards`` given) the snapshots are dealt round-robin to
    ``n_shards`` actors (default: one per node) placed on ``nodes`` in turn. A split larger than
    ``memory_budget_gb`` (None: automatic, see ``hpsearch.tune.streaming``) is streamed instead:
    one stream actor per node, nothing loaded but the training moments.
    """
    from hpsearch.tune.streaming import choose_streaming, stream_actor

    ray = _require_ray()
    nodes = list(nodes) if nodes else _alive_nodes(ray)
    replicate = n_shards is None if replicate is None else replicate
    n_names = len([*split.train, *split.validation, *split.test])
    if n_shards is not None and not 1 <= n_shards <= n_names:
        raise ConfigError(f"n_shards={n_shards} must be between 1 and the {n_names} snapshots of the split")
    key = shard_key(store_path, split)
    if choose_streaming(store_path, split, memory_budget_gb)[0]:
        handles = {_stream_name(key, n): stream_actor(_stream_name(key, n), n, store_path, split) for n in nodes}
        ray.get([h.layout.remote() for h in handles.values()])
        every = tuple([*split.train, *split.validation, *split.test])
        placement = ShardPlacement(key, str(store_path), split, {a: (n, every) for a, n in zip(handles, nodes)},
                                   True, {}, streamed=True, chunk_points=chunk_points, prefetch=prefetch)
        log.info("each streaming trial holds at most %d chunks of %d points in its node's object store",
                 prefetch + 2, chunk_points)
    elif replicate:
        handles = {n: node_actor(store_path, split, n) for n in nodes}
        names = [*split.train, *split.validation, *split.test]
        ray.get([h.payload.remote() for h in handles.values()])
        infos = ray.get([h.info.remote() for h in handles.values()])
        actor_names = [f"{_PREFIX}-{key}-{n[:16]}" for n in handles]
        actors = {a: (i["node_id"], tuple(names)) for a, i in zip(actor_names, infos)}
        nbytes = {a: int(i["nbytes"]) for a, i in zip(actor_names, infos)}
        placement = ShardPlacement(key, str(store_path), split, actors, True, nbytes)
    else:
        placement = _place_sharded(ray, key, store_path, split, nodes, n_shards or len(nodes))
    log.info("%s", placement.report())
    return placement


def _stream_name(key: str, node_id: str) -> str:
    return f"{_PREFIX}-{key}-stream-{node_id[:16]}"


def _place_sharded(ray: Any, key: str, store_path: str | Path, split: Split, nodes: list[str],
                   n_shards: int) -> ShardPlacement:
    names = [*split.train, *split.validation, *split.test]
    dealt = [names[i::n_shards] for i in range(n_shards)]
    handles = {}
    for i, part in enumerate(dealt):
        name = f"{_PREFIX}-{key}-s{i}of{n_shards}"
        handles[name] = _start_actor(name, nodes[i % len(nodes)], str(store_path), split, part)
    ray.get([h.payload.remote() for h in handles.values()])
    infos = ray.get([h.info.remote() for h in handles.values()])
    actors = {name: (info["node_id"], tuple(info["names"])) for name, info in zip(handles, infos)}
    nbytes = {name: int(info["nbytes"]) for name, info in zip(handles, infos)}
    return ShardPlacement(key, str(store_path), split, actors, False, nbytes)


def _tensor(array: np.ndarray, device: Any) -> Any:
    return as_tensor(array, None if device.type == "cpu" else device)


def _cat(parts: list[Any]) -> Any:
    import torch

    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _assemble(payloads: list[dict[str, Any]], split: Split, store_path: str, device: Any) -> TrainingData:
    """TrainingData from shard payloads: one ray.get for every array, in split order."""
    ray = _require_ray()
    parts = {role: [p[role] for p in payloads if p[role]] for role in ("train", "validation")}
    for role in parts:  # shards in the order of their first snapshot in the split
        order = list(getattr(split, role))
        parts[role].sort(key=lambda part, order=order: order.index(part["names"][0]))
    tests = {t["name"]: t for p in payloads for t in p["test"]}
    refs = [r for role in parts for part in parts[role] for r in (part["x"], part["y"])]
    refs += [r for name in split.test for r in (tests[name]["x"], tests[name]["y"])]
    arrays = iter(ray.get(refs))
    tensors = {role: [(_tensor(next(arrays), device), _tensor(next(arrays), device)) for _ in parts[role]]
               for role in parts}
    test = []
    for name in split.test:
        meta = {k: v for k, v in tests[name].items() if k not in ("x", "y")}
        test.append(TestSnapshot(descriptors=_tensor(next(arrays), device), ldos=_tensor(next(arrays), device), **meta))
    moments = [part["moments"] for part in parts["train"]]
    return TrainingData(
        x_train=_cat([x for x, _ in tensors["train"]]), y_train=_cat([y for _, y in tensors["train"]]),
        x_val=_cat([x for x, _ in tensors["validation"]]), y_val=_cat([y for _, y in tensors["validation"]]),
        test=test, train_names=tuple(split.train), validation_names=tuple(split.validation), source=store_path,
        train_moments=(merge_moments([m[0] for m in moments]), merge_moments([m[1] for m in moments])),
        validation_meta=tuple(meta for part in parts["validation"] for meta in part.get("snapshots", [])),
    )


def get_training_data(
    store_path: str | Path, split: Split, placement: ShardPlacement | None = None, device: Any = None,
) -> PointSource:
    """The split's data inside a trial, served by the node's actor (or gathered from the shards).

    In memory (:class:`TrainingData`) below the memory budget; streamed from the node's stream
    actor (:class:`~hpsearch.model.streaming.StreamedData`) when the placement says so.

    Never reads the store itself: the first call on a node starts the node's actor, which reads it
    once. Cached per worker process, so a reused worker gets the same object back at no cost.
    """
    from hpsearch.model.training import resolve_device

    dev = resolve_device(device)
    sharded = placement is not None and not placement.replicated
    streamed = placement is not None and placement.streamed
    key = placement.key if placement is not None else shard_key(store_path, split)
    cache_key = (key, "streamed" if streamed else "sharded" if sharded else "replica", str(dev))
    if cache_key in _CACHE:
        _CACHE.move_to_end(cache_key)
        return _CACHE[cache_key]
    ray = _require_ray()
    if placement is not None and streamed:
        from hpsearch.tune.streaming import stream_actor, streamed_training_data

        node = ray.get_runtime_context().get_node_id()
        handle = stream_actor(_stream_name(key, node), node, store_path, split)
        data: PointSource = streamed_training_data(handle, split, str(store_path), placement.chunk_points,
                                                   placement.prefetch, dev)
        _remember(cache_key, data)
        return data
    if placement is not None and sharded:
        handles = [ray.get_actor(name, namespace=NAMESPACE) for name in placement.actors]
    else:
        handles = [node_actor(store_path, split)]
    data = _fetch(ray, handles, split, str(store_path), dev)
    _remember(cache_key, data)
    return data


def _remember(cache_key: tuple[str, str, str], data: PointSource) -> None:
    _CACHE[cache_key] = data
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)


def _fetch(ray: Any, handles: list[Any], split: Split, store_path: str, device: Any, tries: int = 3) -> TrainingData:
    """Payloads from the actors, then their arrays; retried when an actor died in between (its
    object references then belong to a dead owner and the restarted actor hands out new ones)."""
    from ray.exceptions import ObjectLostError, OwnerDiedError

    for attempt in range(1, tries + 1):
        payloads = ray.get([h.payload.remote() for h in handles])
        try:
            return _assemble(payloads, split, store_path, device)
        except (OwnerDiedError, ObjectLostError) as exc:
            if attempt == tries:
                raise
            log.warning("a data actor was lost while its shard was fetched (%s); asking again", type(exc).__name__)
    raise AssertionError("unreachable")


def clear_cache() -> None:
    """Forget this process's assembled data (the actors keep theirs)."""
    _CACHE.clear()


def release_shards(key: str | None = None) -> int:
    """Kill this package's data actors (those of one store key, or all); returns how many."""
    ray = _require_ray()
    from ray.util import list_named_actors

    prefix = f"{_PREFIX}-{key}" if key else _PREFIX
    killed = 0
    for entry in list_named_actors(all_namespaces=True):
        if entry["namespace"] == NAMESPACE and entry["name"].startswith(prefix):
            ray.kill(ray.get_actor(entry["name"], namespace=NAMESPACE))
            killed += 1
    _CACHE.clear()
    return killed
