"""The one interface training reads data through, and the epoch order both data paths share.

A :class:`PointSource` is what :func:`~hpsearch.model.training.train` consumes: shuffled
mini-batches of training points, validation points in chunks, scalers fitted on the training
points, and whole test snapshots for the band energy. Two implementations exist: the split held
in memory (:class:`~hpsearch.model.data.TrainingData`) and the split streamed chunk by chunk from
where it is stored (:class:`~hpsearch.model.streaming.StreamedData`). The loop is the same for both.

The chunked epoch order (:func:`chunk_plan`): the training points, concatenated over snapshots,
are cut into ranges of ``chunk_points``; each epoch visits the ranges in a seeded random order and
the points of each range in a seeded random order, and mini-batches run across range borders.
A streamed source must use it (it never holds more than a few ranges); the in-memory source uses
it when given ``chunk_points``, and then yields exactly the streamed batches.

Subsamples (both cut training and validation cost, see ``TrainingSettings``): an epoch of
``n_points`` < all points takes the first ``n_points`` of the epoch's order (a seeded random
subsample, without replacement; in the chunked order the first ranges of the plan, the last one
cut short, so a streamed epoch reads only what it trains on). The validation subsample
(:func:`validation_sample_rows`) is fixed: the same points in every epoch and every trial.

Example:
    >>> plan = chunk_plan(10, 4, torch.Generator().manual_seed(0))   # e.g. [(8, 10), (0, 4), (4, 8)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from hpsearch.errors import DataError
from hpsearch.model.scaling import Scalers, ScalingMode

__all__ = ["PointSource", "SnapshotPoints", "VALIDATION_SAMPLE_SEED", "batches_from_chunks", "chunk_plan",
           "chunk_ranges", "gather_rows", "validation_sample_rows"]

#: Seed of the validation subsample: a constant, so that every trial of a study (every seed and
#: configuration) measures its per-epoch validation loss on the same points, as ASHA compares them.
VALIDATION_SAMPLE_SEED = 0


@runtime_checkable
class SnapshotPoints(Protocol):
    """One whole snapshot for evaluation: its points in chunks, and what the band energy needs."""

    name: str
    energy_grid: Any
    voxel_volume_angstrom3: float
    n_electrons: float
    n_atoms: int
    temperature_k: float

    @property
    def n_points(self) -> int: ...

    @property
    def n_energies(self) -> int: ...

    def chunks(self, size: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(descriptors, ldos)`` of consecutive points, at most ``size`` at a time, on ``device``."""
        ...


@runtime_checkable
class PointSource(Protocol):
    """What training reads (see the module docstring); both paths implement it."""

    test: Sequence[Any]

    @property
    def n_features(self) -> int: ...

    @property
    def n_energies(self) -> int: ...

    @property
    def n_train_points(self) -> int: ...

    @property
    def n_val_points(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    def scalers(self, descriptor_mode: ScalingMode = ..., ldos_mode: ScalingMode = ...) -> Scalers: ...

    def to(self, device: torch.device | str) -> PointSource: ...

    def train_batches(self, batch_size: int, generator: torch.Generator,
                      n_points: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of unscaled ``(descriptors, ldos)`` mini-batches in a seeded shuffled order;
        ``n_points``: only that many points (the first of the epoch's order), None: all."""
        ...

    def validation_chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every validation point once, in order, in chunks (unscaled, on :attr:`device`)."""
        ...

    def validation_sample(self, n_points: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The fixed validation subsample of ``n_points`` (:func:`validation_sample_rows`) as unscaled
        ``(descriptors, ldos)`` on :attr:`device`, kept for later calls; None when ``n_points``
        covers every validation point (then validate on all)."""
        ...

    def train_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Unscaled descriptors of the training points ``rows`` (sorted indices), e.g. for NASWOT."""
        ...


def chunk_ranges(n_points: int, chunk_points: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of ``chunk_points`` over ``n_points`` (the last may be shorter)."""
    if chunk_points < 1:
        raise DataError(f"chunk_points={chunk_points} must be >= 1")
    return [(start, min(start + chunk_points, n_points)) for start in range(0, n_points, chunk_points)]


def chunk_plan(n_points: int, chunk_points: int, generator: torch.Generator,
               limit: int | None = None) -> list[tuple[int, int]]:
    """This epoch's order of the chunk ranges (one draw of ``generator``); with ``limit`` <
    ``n_points``, only the first ranges of that order holding ``limit`` points (the last cut short)."""
    ranges = chunk_ranges(n_points, chunk_points)
    order = torch.randperm(len(ranges), generator=generator, device=generator.device).tolist()
    plan = [ranges[i] for i in order]
    if limit is None or limit >= n_points:
        return plan
    kept: list[tuple[int, int]] = []
    left = limit
    for start, stop in plan:
        if left <= 0:
            break
        take = min(stop - start, left)
        kept.append((start, start + take))
        left -= take
    return kept


def _within(size: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(size, generator=generator, device=generator.device)


def chunked_permutation(n_points: int, chunk_points: int, generator: torch.Generator,
                        limit: int | None = None) -> torch.Tensor:
    """The epoch's point order of :func:`chunk_plan` as one permutation (the in-memory path); with
    ``limit``, the ``limit`` points the streamed path reads for that epoch, in its order."""
    plan = chunk_plan(n_points, chunk_points, generator, limit)
    return torch.cat([start + _within(stop - start, generator) for start, stop in plan])


def validation_sample_rows(n_val: int, n_points: int) -> torch.Tensor | None:
    """Sorted rows (int64, CPU) of the fixed validation subsample: ``n_points`` of ``n_val`` drawn
    without replacement with :data:`VALIDATION_SAMPLE_SEED`; None when ``n_points >= n_val``."""
    if n_points < 1:
        raise DataError(f"validation_points={n_points} must be >= 1 (or None for every validation point)")
    if n_points >= n_val:
        return None
    generator = torch.Generator().manual_seed(VALIDATION_SAMPLE_SEED)
    return torch.randperm(n_val, generator=generator)[:n_points].sort().values


def gather_rows(chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The points ``rows`` (sorted indices into the concatenated chunks) of ``(x, y)`` chunks
    arriving in order, as two new tensors (one pass; a streamed source reads each chunk once)."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    offset = 0
    for x, y in chunks:
        lo, hi = (int(i) for i in torch.searchsorted(rows, torch.tensor([offset, offset + x.shape[0]])))
        if hi > lo:
            local = (rows[lo:hi] - offset).to(x.device)
            xs.append(x.index_select(0, local))
            ys.append(y.index_select(0, local))
        offset += int(x.shape[0])
    found = sum(int(x.shape[0]) for x in xs)
    if found != rows.numel():
        raise DataError(f"{rows.numel() - found} of the {rows.numel()} rows asked for lie beyond the {offset} points")
    return (xs[0], ys[0]) if len(xs) == 1 else (torch.cat(xs), torch.cat(ys))


def batches_from_chunks(
    chunks: Iterator[tuple[torch.Tensor, torch.Tensor]], batch_size: int, generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of chunks arriving in plan order, each shuffled as :func:`chunked_permutation`
    shuffles it; batches run across chunk borders, so they equal the in-memory batches."""
    left_x: torch.Tensor | None = None
    left_y: torch.Tensor | None = None
    for x, y in chunks:
        perm = _within(x.shape[0], generator).to(x.device)
        start = 0
        if left_x is not None and left_y is not None:
            take = perm[: batch_size - left_x.shape[0]]
            xb, yb = torch.cat([left_x, x.index_select(0, take)]), torch.cat([left_y, y.index_select(0, take)])
            start = take.numel()
            if xb.shape[0] < batch_size:
                left_x, left_y = xb, yb
                continue
            left_x = left_y = None
            yield xb, yb
        for begin in range(start, x.shape[0], batch_size):
            idx = perm[begin : begin + batch_size]
            if idx.numel() < batch_size:
                left_x, left_y = x.index_select(0, idx), y.index_select(0, idx)
                break
            yield x.index_select(0, idx), y.index_select(0, idx)
    if left_x is not None and left_y is not None:
        yield left_x, left_y
