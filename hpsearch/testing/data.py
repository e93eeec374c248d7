"""Small real stores for tests: the generated small Al dataset, and the Be2 MALA data imported."""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

BE2_ENERGY_GRID = {"offset_ev": -5.0, "spacing_ev": 2.5, "n": 11}


def be2_directory() -> Path:
    """The Be2 MALA data: $HPSEARCH_BE2_DIR, or ../shared/data/mala-be2 beside the repository."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mala-be2"
    return Path(os.environ.get("HPSEARCH_BE2_DIR", default))


def import_be2(directory: Path) -> Path:
    """The Be2 snapshots as an hpsearch store in `directory` (reused when present)."""
    from hpsearch.data.mala import import_mala
    from hpsearch.physics import EnergyGrid

    out = directory / "be2.h5"
    if not out.exists():
        import_mala(be2_directory(), out, EnergyGrid(**BE2_ENERGY_GRID))
    return out


def small_test_store(directory: Path) -> Path:
    """The small generated Al store (``DatasetSettings.small()``) in `directory`, reused when present."""
    from hpsearch.data.generate import DatasetSettings, default_store_path, generate_dataset

    settings = DatasetSettings.small()
    path = directory / f"small-{default_store_path(settings).name}"  # named by the settings hash
    return Path(generate_dataset(path, settings, progress=False))
