"""Ray parallelism for :func:`hpsearch.scoring.score_architectures`: chunks of specs as tasks.

The batch goes into the object store once (as NumPy, read zero-copy by the workers); each task
runs the serial fast path on its chunk with the same seeds, so results do not depend on how
the specs were split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpsearch.scoring.naswot import NaswotResult

if TYPE_CHECKING:
    from hpsearch.model.network import NetworkSpec

log = logging.getLogger(__name__)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise ImportError("parallel NASWOT scoring needs Ray: pip install 'ray[tune]'") from exc
    return ray


def is_driver() -> bool:
    """True in the process that started Ray (not inside a task or actor)."""
    ray = _import_ray()
    return bool(ray.is_initialized()) and ray.get_runtime_context().worker.mode == ray.SCRIPT_MODE


def _score_task(specs: Sequence[NetworkSpec], batch: np.ndarray, options: dict[str, Any]) -> list[NaswotResult]:
    from hpsearch.scoring.batched import score_chunk

    return score_chunk(specs, np.array(batch), **options)


def score_on_ray(
    specs: Sequence[NetworkSpec], batch: torch.Tensor | np.ndarray, options: dict[str, Any],
    ray_address: str | None, n_chunks: int | None, progress: bool,
) -> list[NaswotResult]:
    """Score ``specs`` in ``n_chunks`` Ray tasks (default: 4 per free CPU, at least 1)."""
    from hpsearch.scoring.batched import _progress

    ray = _import_ray()
    if not ray.is_initialized():
        ray.init(address=ray_address)
    cpus = max(1, int(ray.available_resources().get("CPU", 1)))
    n_chunks = max(1, min(len(specs), n_chunks or 4 * cpus))
    array = batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
    batch_ref = ray.put(array)
    task = ray.remote(num_cpus=1)(_score_task)
    chunks = [c for c in np.array_split(np.arange(len(specs)), n_chunks) if c.size]
    refs = [task.remote([specs[i] for i in chunk], batch_ref, options) for chunk in chunks]
    sizes = {ref: chunk.size for ref, chunk in zip(refs, chunks)}
    log.info("scoring %d architectures in %d Ray tasks", len(specs), len(refs))
    with _progress(len(specs), progress, "NASWOT scoring (Ray)") as advance:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            advance(sizes[done[0]])
    results: list[NaswotResult] = []
    for chunk_results in ray.get(refs):
        results.extend(chunk_results)
    return results
