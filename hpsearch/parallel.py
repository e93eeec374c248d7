"""Plain parallel maps over Ray tasks: start or join Ray, run chunks of work, show progress.

Besides :mod:`hpsearch.tune` (studies), this is the one module that imports Ray, and only
inside its functions: importing it costs nothing. It knows nothing of hpsearch's layers (it
imports only :mod:`hpsearch._env`), so every layer that computes many independent things
(descriptor settings, NASWOT scores of many architectures) can hand them to it; the caller
decides whether to go parallel, this module never guesses.

Example::

    from hpsearch import parallel

    with parallel.ray_session(num_cpus=4):
        squares = parallel.map_chunks(square_all, [[1, 2], [3, 4]], shared=None)
    # [[1, 4], [9, 16]]: one Ray task per chunk, results in chunk order
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from hpsearch import _env

__all__ = [
    "ensure_ray",
    "free_cpus",
    "import_ray",
    "is_driver",
    "map_chunks",
    "progress_bar",
    "ray_installed",
    "ray_session",
    "split_evenly",
    "stop_ray",
]

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Shared = TypeVar("Shared")
Out = TypeVar("Out")
#: A chunk's work: its items and the shared object (put into Ray's object store once) -> results.
ChunkFn = Callable[[list[Item], Shared], list[Out]]


def ray_installed() -> bool:
    """True when Ray can be imported (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def import_ray(purpose: str = "parallel work") -> Any:
    """The ``ray`` module; ImportError saying what to install when it is missing."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise ImportError(f"{purpose} needs Ray: pip install 'ray[tune]'") from exc
    return ray


def ensure_ray(address: str | None = None, num_cpus: int | None = None, log_to_driver: bool = True) -> bool:
    """Connect to Ray unless already connected; returns True when this call started it.

    ``None``: a local Ray on this machine (token auth off, temp dir under /tmp: socket paths
    must stay short; ``num_cpus`` caps it); ``"auto"``: the running cluster;
    ``"ray://host:10001"``: Ray Client.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    _env.ray_defaults()
    if address is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=log_to_driver,
                 _temp_dir=tempfile.mkdtemp(prefix="hps_", dir="/tmp"), configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=log_to_driver, configure_logging=False)
    log.info("Ray resources: %s", ray.cluster_resources())
    return True


def stop_ray() -> None:
    """Disconnect from Ray (stopping the local Ray this process started)."""
    import_ray().shutdown()


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                log_to_driver: bool = True) -> Iterator[bool]:
    """Ray for the block: joined if it runs, else started (see :func:`ensure_ray`) and stopped
    afterwards. Yields whether this block started it."""
    started = ensure_ray(address, num_cpus, log_to_driver)
    try:
        yield started
    finally:
        if started:
            stop_ray()


def is_driver() -> bool:
    """True in the process that started or joined Ray (not inside a task or actor)."""
    ray = import_ray()
    return bool(ray.is_initialized()) and ray.get_runtime_context().worker.mode == ray.SCRIPT_MODE


def free_cpus() -> float:
    """CPUs the connected Ray has free now (0 when Ray is not initialised)."""
    ray = import_ray()
    return float(ray.available_resources().get("CPU", 0.0)) if ray.is_initialized() else 0.0


def split_evenly(items: Sequence[Item], n_chunks: int) -> list[list[Item]]:
    """``items`` in at most ``n_chunks`` consecutive chunks whose sizes differ by at most one."""
    n_chunks = max(1, min(len(items), n_chunks))
    size, extra = divmod(len(items), n_chunks)
    chunks, start = [], 0
    for index in range(n_chunks):
        stop = start + size + (1 if index < extra else 0)
        if stop > start:
            chunks.append(list(items[start:stop]))
        start = stop
    return chunks


def map_chunks(
    fn: ChunkFn[Item, Shared, Out], chunks: Sequence[Sequence[Item]], shared: Shared, *,
    num_cpus: float = 1, on_chunk: Callable[[int, list[Out]], None] | None = None,
) -> list[list[Out]]:
    """``fn(chunk, shared)`` for every chunk, one Ray task each (``num_cpus`` apiece), in chunk order.

    Ray must be connected (:func:`ensure_ray` or :func:`ray_session`). ``shared`` goes into the
    object store once (NumPy arrays in it are read zero-copy: read-only in the tasks).
    ``fn`` must be importable by the workers (a module-level function). ``on_chunk(index,
    results)`` runs on the caller's side as each chunk finishes, in the order they finish.
    """
    ray = import_ray()
    shared_ref = ray.put(shared)
    task = ray.remote(num_cpus=num_cpus)(fn)
    refs = [task.remote(list(chunk), shared_ref) for chunk in chunks]
    index = {ref: i for i, ref in enumerate(refs)}
    log.info("%d chunks of work as Ray tasks", len(refs))
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        if on_chunk is not None:
            on_chunk(index[done[0]], ray.get(done[0]))
    return [list(results) for results in ray.get(refs)]


@contextmanager
def progress_bar(total: int, enabled: bool, label: str) -> Iterator[Callable[[int], None]]:
    """A transient progress bar of ``total`` steps; yields ``advance(n)`` (a no-op when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
