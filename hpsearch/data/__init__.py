"""Snapshot data: the HDF5 store, the MALA importer and splits by snapshot.

Example::

    from hpsearch.data import open_store, split_snapshots
    with open_store("be2.h5") as store:
        split = split_snapshots(store.names, n_train=2, n_validation=1, n_test=1)
"""

from __future__ import annotations

from hpsearch.data.mala import import_mala
from hpsearch.data.splits import Split, split_snapshots
from hpsearch.data.store import (
    STORE_FORMAT_VERSION,
    Snapshot,
    SnapshotStore,
    append_snapshots,
    open_store,
    replace_descriptors,
    write_store,
)

__all__ = [
    "STORE_FORMAT_VERSION",
    "Snapshot",
    "SnapshotStore",
    "Split",
    "append_snapshots",
    "import_mala",
    "open_store",
    "replace_descriptors",
    "split_snapshots",
    "write_store",
]
