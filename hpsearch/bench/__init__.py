"""The paper's benchmark: every strategy of table 1 on one search space, compared in MLflow.

Example::

    from hpsearch.bench import BenchmarkSettings, run_paper_benchmark

    report = run_paper_benchmark(BenchmarkSettings(out="results/paper"))
    print(report.markdown)          # the comparison table
    print(report.verdict.text)      # can this benchmark tell searches apart (TPE vs no search)?
    print(report.target.verdict)    # the paper's headline checked on our data ("not decidable" if not)
"""

from __future__ import annotations

from hpsearch.bench.paper import (
    PAPER_STRATEGIES,
    QUICK_STRATEGIES,
    BenchmarkSettings,
    experiment_files,
    load_benchmark_experiments,
    resolve_data,
    run_paper_benchmark,
)
from hpsearch.bench.report import BenchmarkReport, TargetCheck, check_target
from hpsearch.bench.verdict import Verdict, check_verdict

__all__ = [
    "PAPER_STRATEGIES",
    "QUICK_STRATEGIES",
    "BenchmarkReport",
    "BenchmarkSettings",
    "TargetCheck",
    "Verdict",
    "check_target",
    "check_verdict",
    "experiment_files",
    "load_benchmark_experiments",
    "resolve_data",
    "run_paper_benchmark",
]
