"""Drive a Ray Tune ``Searcher`` without Ray, and a synthetic trainable that follows the protocol.

The driver plays Tune's part: it asks ``suggest`` for configs while fewer than
``max_concurrent`` trials run, completes the oldest running trial when the searcher answers
``None`` (or the concurrency limit is reached), feeds every intermediate result to
``on_trial_result`` and the last one to ``on_trial_complete``, and stops at
``Searcher.FINISHED`` or after ``limit`` trials, like ``TuneConfig(num_samples=limit)``.

The synthetic results follow the trial protocol of CONTRACTS.md (``_kind`` 'train' or 'score',
``_naswot`` first report), with deterministic values derived from the config, so two runs of a
seeded searcher see the same results.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpsearch.config.space import parameter_kind
from hpsearch.config.strategy import METRIC, NASWOT_METRIC

Reports = list[dict[str, Any]]


def canonical(config: dict[str, Any]) -> str:
    """A stable text form of a trial config (for equality and duplicate checks)."""
    return json.dumps(config, sort_keys=True, default=repr)


def _unit(text: str) -> float:
    """A deterministic number in [0, 1) from a string."""
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _term(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _unit(f"{name}={value!r}")
    magnitude = math.log10(abs(float(value)) + 1e-12)
    return abs(math.sin(magnitude + len(name))) + 0.1 * _unit(f"{name}={value!r}")


def synthetic_error(config: dict[str, Any]) -> float:
    """A deterministic, positive 'band-energy error' of a config (lower is better)."""
    hyper = {k: v for k, v in config.items() if not k.startswith("_")}
    return 1.0 + sum(_term(k, v) for k, v in sorted(hyper.items()))


def synthetic_naswot(architecture: dict[str, Any]) -> float:
    """A deterministic NASWOT-like score of an architecture (higher is better)."""
    arch = {k: v for k, v in architecture.items() if not k.startswith("_") and _is_arch(k)}
    return 100.0 - 10.0 * synthetic_error(arch)


def _is_arch(name: str) -> bool:
    try:
        return parameter_kind(name) == "architecture"
    except Exception:  # noqa: BLE001 - unknown names are simply not architecture
        return False


def synthetic_reports(config: dict[str, Any]) -> Reports:
    """The reports a real trial of `config` would make, in order, with synthetic values."""
    if config.get("_kind", "train") == "score":
        candidates = list(config.get("_candidates", []))
        scores = [synthetic_naswot(dict(c)) for c in candidates]
        return [
            {
                "naswot_scores": scores,
                "naswot_reasons": [""] * len(scores),
                NASWOT_METRIC: max(scores) if scores else float("nan"),
                "status": "completed",
            }
        ]
    reports: Reports = []
    extra: dict[str, Any] = {}
    if config.get("_naswot"):
        extra[NASWOT_METRIC] = synthetic_naswot(config)
        reports.append(dict(extra))
    error = synthetic_error(config)
    for epoch in (1, 2):
        reports.append({"epoch": epoch, "train_loss": error / epoch, "val_loss": error / epoch, **extra})
    reports.append(
        {
            METRIC: error,
            "val_error_std_mev_per_atom": 0.0,
            "status": "completed",
            "reason": "",
            "training_seconds": 0.0,
            "n_parameters": 1,
            **extra,
        }
    )
    return reports


def synthetic_trainable(config: dict[str, Any]) -> None:
    """A Ray Tune function trainable that reports :func:`synthetic_reports` (no training)."""
    from hpsearch.tune.adapters import report

    for metrics in synthetic_reports(config):
        report(metrics)


@dataclass
class DriveLog:
    """What a driven searcher did: configs in order of suggestion, and whether it finished."""

    configs: list[dict[str, Any]] = field(default_factory=list)
    trial_ids: list[str] = field(default_factory=list)
    finished: bool = False
    completed: list[str] = field(default_factory=list)


class SearcherDriver:
    """Plays Tune for one searcher; :meth:`handover` continues with a restored searcher."""

    def __init__(
        self,
        searcher: Any,
        *,
        max_concurrent: int = 1,
        limit: int | None = None,
        flags: dict[str, Any] | None = None,
        reports: Callable[[dict[str, Any]], Reports] = synthetic_reports,
        max_stalls: int = 3,
    ) -> None:
        self.searcher = searcher
        self.max_concurrent = max_concurrent
        self.limit = limit
        self.flags = dict(flags or {})
        self.reports = reports
        self.max_stalls = max_stalls
        self.log = DriveLog()
        self.pending: deque[tuple[str, dict[str, Any]]] = deque()
        self.calls = 0

    def handover(self, searcher: Any) -> SearcherDriver:
        """A driver that goes on from here with another (restored) searcher."""
        other = SearcherDriver(
            searcher,
            max_concurrent=self.max_concurrent,
            limit=self.limit,
            flags=self.flags,
            reports=self.reports,
            max_stalls=self.max_stalls,
        )
        other.log = DriveLog(list(self.log.configs), list(self.log.trial_ids), False, list(self.log.completed))
        other.pending = deque(self.pending)
        other.calls = self.calls
        return other

    def _complete_oldest(self) -> None:
        trial_id, config = self.pending.popleft()
        reports = self.reports(config)
        for report in reports[:-1]:
            self.searcher.on_trial_result(trial_id, dict(report, config=config))
        self.searcher.on_trial_complete(trial_id, result=dict(reports[-1], config=config), error=False)
        self.log.completed.append(trial_id)

    def run(self, stop_after: int | None = None, max_calls: int = 100_000) -> DriveLog:
        """Suggest and complete until FINISHED / the limit, or until `stop_after` suggestions."""
        from hpsearch.tune.adapters import FINISHED

        stalls = 0
        for _ in range(max_calls):
            if stop_after is not None and len(self.log.configs) >= stop_after:
                return self.log
            if self.limit is not None and len(self.log.configs) >= self.limit:
                break
            if len(self.pending) >= self.max_concurrent:
                self._complete_oldest()
                continue
            trial_id = f"trial_{self.calls:05d}"
            self.calls += 1
            suggestion = self.searcher.suggest(trial_id)
            if suggestion == FINISHED:
                self.log.finished = True
                break
            if suggestion is None:
                if self.pending:
                    self._complete_oldest()
                    continue
                stalls += 1
                if stalls > self.max_stalls:
                    raise AssertionError(
                        "suggest() returned None while no trial was running: Tune would wait forever"
                    )
                continue
            config = {**suggestion, **self.flags}
            self.pending.append((trial_id, config))
            self.log.configs.append(config)
            self.log.trial_ids.append(trial_id)
        else:
            raise AssertionError(f"the searcher did not finish within {max_calls} calls")
        while self.pending:
            self._complete_oldest()
        return self.log


def drive_searcher(
    searcher: Any,
    *,
    max_concurrent: int = 1,
    limit: int | None = None,
    flags: dict[str, Any] | None = None,
) -> DriveLog:
    """Run `searcher` to the end with synthetic results; see :class:`SearcherDriver`."""
    return SearcherDriver(searcher, max_concurrent=max_concurrent, limit=limit, flags=flags).run()
