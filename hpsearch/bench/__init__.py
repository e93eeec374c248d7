"""The paper's benchmark: every strategy of table 1 on one search space, compared in MLflow.

Example::

    from hpsearch.bench import BenchmarkSettings, run_paper_benchmark

    report = run_paper_benchmark(BenchmarkSettings(out="results/paper"))
    print(report.markdown)          # the comparison table
    print(report.target.verdict)    # the paper's headline checked on our data
"""

from __future__ import annotations

from hpsearch.bench.paper import (
    PAPER_STRATEGIES,
    QUICK_STRATEGIES,
    BenchmarkSettings,
    experiment_files,
    load_benchmark_experiments,
    run_paper_benchmark,
)
from hpsearch.bench.report import BenchmarkReport, TargetCheck, check_target

__all__ = [
    "PAPER_STRATEGIES",
    "QUICK_STRATEGIES",
    "BenchmarkReport",
    "BenchmarkSettings",
    "TargetCheck",
    "check_target",
    "experiment_files",
    "load_benchmark_experiments",
    "run_paper_benchmark",
]
