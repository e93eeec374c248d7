"""Test helpers shipped with hpsearch, so plug-in strategies are tested like the built-ins.

:class:`SearcherConformance` is a pytest mixin every searcher's tests subclass; see
:mod:`hpsearch.testing.conformance` for what a subclass provides.
"""

from hpsearch.testing.conformance import SearcherConformance
from hpsearch.testing.driver import (
    DriveLog,
    SearcherDriver,
    canonical,
    drive_searcher,
    synthetic_reports,
    synthetic_trainable,
)

__all__ = [
    "DriveLog",
    "SearcherConformance",
    "SearcherDriver",
    "canonical",
    "drive_searcher",
    "synthetic_reports",
    "synthetic_trainable",
]
