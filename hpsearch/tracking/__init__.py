"""MLflow tracking: run hierarchy, fail-safe journal, local server, plots, comparison."""

from hpsearch.tracking.journal import sync_pending
from hpsearch.tracking.server import TrackingServer, start_server
from hpsearch.tracking.tracker import StudyTracker, TrialRecord, default_tracking_uri

__all__ = [
    "StudyTracker",
    "TrackingServer",
    "TrialRecord",
    "default_tracking_uri",
    "start_server",
    "sync_pending",
]
