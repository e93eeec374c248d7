"""Ray glue: data shards held by actors per node, trainables, the runner.

Names are imported lazily so that ``import hpsearch.tune`` stays cheap; Ray itself is imported
only when an actor is started or looked up.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "NAMESPACE": "hpsearch.tune.shards",
    "ShardActor": "hpsearch.tune.shards",
    "ShardPlacement": "hpsearch.tune.shards",
    "clear_cache": "hpsearch.tune.shards",
    "get_training_data": "hpsearch.tune.shards",
    "node_actor": "hpsearch.tune.shards",
    "place_shards": "hpsearch.tune.shards",
    "release_shards": "hpsearch.tune.shards",
    "shard_key": "hpsearch.tune.shards",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpsearch.tune' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
