"""Train / validation / test splits by snapshot, never by grid point.

Grid points of one snapshot are strongly correlated; splitting them across sets would leak the
test data into training. Example::

    split = split_snapshots(store.names, n_train=2, n_validation=1, n_test=1)
    split.train  # ('Be_snapshot0', 'Be_snapshot1')
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from hpsearch.errors import DataError

__all__ = ["Split", "default_split_counts", "split_snapshots"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Snapshot names of each set; the sets are disjoint.

    Example: ``Split(train=("s0", "s1"), validation=("s2",), test=("s3",))``
    """

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]

    def __post_init__(self) -> None:
        seen = [*self.train, *self.validation, *self.test]
        if len(set(seen)) != len(seen):
            repeated = sorted({name for name in seen if seen.count(name) > 1})
            raise DataError(f"a snapshot may be in only one set of a split; repeated: {repeated}")

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-friendly form (for logging with a run)."""
        return {"train": list(self.train), "validation": list(self.validation), "test": list(self.test)}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[str]]) -> Split:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["train"]), tuple(data["validation"]), tuple(data["test"]))


def split_snapshots(
    names: Sequence[str],
    n_train: int,
    n_validation: int,
    n_test: int,
    seed: int | None = None,
) -> Split:
    """Assign whole snapshots to train, validation and test, in the given order.

    The first ``n_train`` names train, the next ``n_validation`` validate, the next ``n_test``
    test; any rest is unused. With ``seed`` the names are shuffled (reproducibly) first.
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise DataError(f"snapshot names must be unique, got {names}")
    counts = {"n_train": n_train, "n_validation": n_validation, "n_test": n_test}
    for label, count in counts.items():
        if not isinstance(count, int) or count < 0:
            raise DataError(f"{label} must be a non-negative integer, got {count!r}")
    if n_train < 1:
        raise DataError("n_train must be at least 1: a network needs a training snapshot")
    needed = n_train + n_validation + n_test
    if needed > len(names):
        raise DataError(
            f"the split needs {needed} snapshots ({n_train} train + {n_validation} validation + "
            f"{n_test} test) but only {len(names)} are available ({names}): ask for fewer or add snapshots"
        )
    if seed is not None:
        random.Random(seed).shuffle(names)
    if needed < len(names):
        logger.info("split uses %d of %d snapshots; unused: %s", needed, len(names), names[needed:])
    return Split(
        train=tuple(names[:n_train]),
        validation=tuple(names[n_train : n_train + n_validation]),
        test=tuple(names[n_train + n_validation : needed]),
    )


def default_split_counts(n_snapshots: int) -> tuple[int, int, int]:
    """(train, validation, test) counts for a store of ``n_snapshots`` when none is given: about
    40 % test and 20 % validation (at least one each), the rest trains; 4 -> 2:1:1, 10 -> 4:2:4."""
    if n_snapshots < 3:
        raise DataError(
            f"the store holds {n_snapshots} snapshot(s): a default split needs at least 3 (one each to train, "
            "validate and test); give the split explicitly or add snapshots"
        )
    n_test = max(1, (2 * n_snapshots) // 5)
    n_validation = max(1, n_snapshots // 5)
    return n_snapshots - n_validation - n_test, n_validation, n_test
