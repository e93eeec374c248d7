"""Ray Tune's process-wide trainable registry, made safe for studies started from several threads.

Every ``Tuner.fit`` registers its trainable in ``ray.tune.registry._global_registry``, whose
``register`` adds to a dict that ``flush_values`` iterates: two studies starting at once (the
benchmark's ``--parallel-studies``) raised "dictionary changed size during iteration" (about 1
run in 3 of the cluster test). Both methods are wrapped, once per process, with one re-entrant
lock.
"""

from __future__ import annotations

import threading
from typing import Any

_REGISTRY_LOCK = threading.RLock()


def thread_safe_tune_registry() -> None:
    """Wrap the registry's ``register`` and ``flush_values`` with one lock (idempotent)."""
    from ray.tune import registry

    found = registry._global_registry
    if getattr(found, "_hpsearch_locked", False):
        return

    def locked(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with _REGISTRY_LOCK:
                return method(*args, **kwargs)
        return call

    found.register = locked(found.register)
    found.flush_values = locked(found.flush_values)
    found._hpsearch_locked = True
