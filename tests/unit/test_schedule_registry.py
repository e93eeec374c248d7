"""Studies started from several threads register their trainables in Ray Tune's process-wide
registry at the same time; hpsearch serialises it (`thread_safe_tune_registry`). Without the lock
Ray's `flush_values` iterates a dict another thread is adding to."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytestmark = pytest.mark.ray


def test_concurrent_registrations_with_a_real_ray(ray_local: Any) -> None:
    from ray.tune import registry

    from hpsearch.tune.registry import thread_safe_tune_registry

    thread_safe_tune_registry()
    thread_safe_tune_registry()  # once is enough; a second call changes nothing
    assert registry._global_registry._hpsearch_locked
    errors: list[BaseException] = []

    def register(worker: int) -> None:
        try:
            for i in range(150):
                registry.register_trainable(f"hps-test-{worker}-{i}", lambda config: None)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(registry._global_registry.contains(registry.TRAINABLE_CLASS, f"hps-test-{w}-149") for w in range(6))
