"""The strategies of the paper benchmark: which experiment files run, and their names in the table."""

from __future__ import annotations

__all__ = ["LABELS", "PAPER_STRATEGIES", "QUICK_STRATEGIES"]

#: Experiment files (stems) of the full benchmark, in the order they run: the null (no search: one
#: random architecture, the row TPE must beat for the benchmark to decide anything), the paper's
#: six, then the multi-fidelity peers and the proxy-guided hybrid.
PAPER_STRATEGIES = ("null", "naswot", "naswot-optimized", "tpe-pruner", "oat", "direct", "tpe",
                    "random-asha", "tpe-asha", "naswot-halving")
#: The short comparison of ``hpsearch demo`` (``experiments/quick/``), with the null.
QUICK_STRATEGIES = ("null", "naswot", "tpe-pruner", "oat", "tpe")
#: How each file's strategy is named in the table (the reference of the speed-up is "tpe").
LABELS = {
    "null": "no search",
    "direct": "direct",
    "tpe": "tpe",
    "tpe-pruner": "tpe + naswot-pruner",
    "oat": "oat",
    "naswot": "naswot (fixed)",
    "naswot-optimized": "naswot (optimized)",
    "random-asha": "random + asha",
    "tpe-asha": "tpe + asha",
    "naswot-halving": "naswot-halving",
}
