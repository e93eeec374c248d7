"""A saved MLflow view that opens an experiment's runs table on the strategy comparison.

MLflow's runs table shows no metric column until a user picks them (58 candidates in a
benchmark). MLflow keeps saved and shared views as experiment tags
``mlflow.sharedViewState.<key>``, loaded by the link parameter ``viewStateShareKey=<key>`` and
listed under *Views*. hpsearch writes one such view, :data:`VIEW_KEY`, into every experiment it
creates: study runs only, sorted by the retrained test error, with the comparison columns. The
benchmark tags every study run with its ``strategy`` label ("tpe + asha", "no search"): the view
shows it as the first column, and the ridge and constant baselines of the study's split beside its
test LDOS RMSE.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from hpsearch.tracking import summary as keys

logger = logging.getLogger(__name__)

VIEW_KEY = "hpsearch-comparison"
VIEW_NAME = "hpsearch comparison"
_TAG_PREFIX = "mlflow.sharedViewState."

#: metric columns of the view, in order: the protocol's figures, then the benchmark's comparison
COMPARISON_METRICS = (
    keys.RETRAIN_MEAN,
    keys.RETRAIN_STD,
    keys.TEST_LDOS_RMSE,
    keys.RIDGE_TEST_LDOS_RMSE,
    keys.CONSTANT_TEST_LDOS_RMSE,
    keys.SKILL,
    keys.BEST_ERROR,
    keys.CORE_SECONDS,
    keys.RETRAIN_CORE_SECONDS,
    keys.WALL_SECONDS,
    "strategy_test_error_median_mev_per_atom",
    "strategy_test_error_ci_low_mev_per_atom",
    "strategy_test_error_ci_high_mev_per_atom",
    "speedup_vs_tpe",
    "strategy_p_vs_tpe",
    "strategy_ldos_p_vs_tpe",
    keys.TRIALS_COMPLETED,
    keys.TRIALS_PRUNED,
)
COMPARISON_PARAMS = ("strategy", "scheduler", "seed")
#: the benchmark's strategy label (shown first), its verdict and its one-line comparison
STRATEGY_TAG = "strategy"
COMPARISON_TAGS = (STRATEGY_TAG, "hpsearch.verdict", "hpsearch.comparison")


def _column(kind: str, name: str) -> str:
    return f"{kind}.`{name}`"  # MLflow's canonical column key


def comparison_view_state() -> dict[str, Any]:
    """The view's state as MLflow's runs table reads it (search facets + UI state)."""
    columns = ([_column("metrics", m) for m in COMPARISON_METRICS]
               + [_column("params", p) for p in COMPARISON_PARAMS]
               + [_column("tags", t) for t in COMPARISON_TAGS])
    strategy = _column("tags", STRATEGY_TAG)
    return {
        "searchFilter": "tags.`hpsearch.role` = 'study'",
        "orderByKey": _column("metrics", keys.RETRAIN_MEAN),
        "orderByAsc": True,
        "selectedColumns": columns,
        "columnOrder": [strategy] + [c for c in columns if c != strategy],
        "runsExpanded": {},
    }


def comparison_view_tag(now_ms: int | None = None) -> tuple[str, str]:
    """(tag key, tag value) of the saved view, in MLflow's saved-view envelope."""
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    envelope = {"name": VIEW_NAME, "createdAt": stamp, "updatedAt": stamp,
                "state": json.dumps(comparison_view_state())}
    return _TAG_PREFIX + VIEW_KEY, json.dumps(envelope)


def save_comparison_view(client: Any, experiment_id: str) -> None:
    """Write the view into the experiment unless it holds one already (a user's edits stay)."""
    try:
        experiment = client.get_experiment(experiment_id)
        key, value = comparison_view_tag()
        if key not in (experiment.tags or {}):
            client.set_experiment_tag(experiment_id, key, value)
    except Exception as exc:  # noqa: BLE001 - a view is a convenience: never fail a study over it
        logger.debug("could not save the comparison view in experiment %s: %s", experiment_id, exc)


def view_link_suffix() -> str:
    """What a runs-table link appends to open the comparison view."""
    return f"&viewStateShareKey={VIEW_KEY}"
