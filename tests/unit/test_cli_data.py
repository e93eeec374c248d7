"""``hpsearch data``: import-mala, info and descriptors through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hpsearch.cli import app
from hpsearch.data import open_store
from hpsearch.data.mala import MALA_SNAP_SETTINGS
from hpsearch.errors import ConfigError, DataError

HPSEARCH = Path(sys.executable).parent / "hpsearch"
runner = CliRunner()
WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def be2_store(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "be2.h5"
    result = runner.invoke(app, ["data", "import-mala", str(be2_dir), "-o", str(path), "--energy-grid", "-5:2.5:11"])
    assert result.exit_code == 0, result.output
    assert "wrote 4 snapshots" in result.output
    return path


def test_import_and_info(be2_store: Path) -> None:
    with open_store(be2_store) as store:
        assert len(store.names) == 4
        content_hash = store.content_hash()
        assert store.metadata("Be_snapshot3").energy_grid.to_dict() == {"offset_ev": -5.0, "spacing_ev": 2.5, "n": 11}
    result = runner.invoke(app, ["data", "info", str(be2_store)], env=WIDE)
    assert result.exit_code == 0, result.output
    for expected in ("4: Be_snapshot0, Be_snapshot1, Be_snapshot2, Be_snapshot3", "Be2 (2 atoms)", "18x18x27",
                     "91", "11 points, -5 to 20 eV, step 2.5 eV", "299.9", "MB", content_hash):
        assert expected in result.output, (expected, result.output)


def test_import_options_and_errors(be2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.h5"
    args = ["data", "import-mala", str(be2_dir), "-o", str(out), "--snapshot", "Be_snapshot1",
            "--descriptor-settings", '{"kind": "unknown-origin"}']
    assert runner.invoke(app, [*args, "--energy-grid=-5:2.5:11"]).exit_code == 0
    with open_store(out) as store:
        assert store.names == ["Be_snapshot1"]
        assert store.metadata("Be_snapshot1").descriptor_settings == {"kind": "unknown-origin"}
    result = runner.invoke(app, [*args, "--energy-grid", "-5:2.5:11"])
    assert isinstance(result.exception, DataError) and "already exists" in str(result.exception)
    appended = ["data", "import-mala", str(be2_dir), "-o", str(out), "--snapshot", "Be_snapshot3",
                "--descriptor-settings", '{"kind": "unknown-origin"}', "--energy-grid", "-5:2.5:11", "--append"]
    assert runner.invoke(app, appended).exit_code == 0
    with open_store(out) as store:
        assert store.names == ["Be_snapshot1", "Be_snapshot3"]
    result = runner.invoke(app, appended)  # the same snapshot again
    assert isinstance(result.exception, DataError) and "duplicate snapshot name 'Be_snapshot3'" in str(result.exception)
    default_settings = ["data", "import-mala", str(be2_dir), "-o", str(out), "--snapshot", "Be_snapshot2",
                        "--energy-grid", "-5:2.5:11", "--append"]
    result = runner.invoke(app, default_settings)  # MALA's default settings differ from the store's
    assert isinstance(result.exception, DataError) and "does not match the store" in str(result.exception)
    for bad in ("-5:2.5", "a:b:c", "-5:0:11"):
        result = runner.invoke(app, [*args, "--overwrite", "--energy-grid", bad])
        assert isinstance(result.exception, ConfigError), (bad, result.output)
        assert "OFFSET:SPACING:N" in str(result.exception) or "spacing" in str(result.exception)
    result = runner.invoke(app, ["data", "import-mala", str(be2_dir), "-o", str(tmp_path / "x.h5"),
                                 "--energy-grid", "-5:2.5:12"])
    assert isinstance(result.exception, DataError)
    assert "Be_snapshot0.out.npy" in str(result.exception) and "12" in str(result.exception)


def test_entry_point_subprocess(be2_store: Path, tmp_path: Path) -> None:
    """The installed console script: a summary, and a user error as one line with exit code 2."""
    done = subprocess.run([str(HPSEARCH), "data", "info", str(be2_store)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    with open_store(be2_store) as store:
        assert store.content_hash() in done.stdout
    missing = subprocess.run([str(HPSEARCH), "data", "info", str(tmp_path / "missing.h5")], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2 and "error:" in missing.stderr and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_entry_point_keeps_exit_codes_and_output_when_it_ends_the_process() -> None:
    """The console script ends with os._exit after the exit handlers: codes and piped output intact."""
    usage = subprocess.run([str(HPSEARCH), "run"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    listing = subprocess.run([sys.executable, "-m", "hpsearch.cli", "searchers"], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr
    assert "naswot-halving" in listing.stdout and "asha" in listing.stdout  # the whole table reached the pipe


@pytest.mark.lammps
def test_descriptors_recomputed_match_mala(be2_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("hpsearch.descriptors.snap")
    path = tmp_path / "one.h5"
    assert runner.invoke(app, ["data", "import-mala", str(be2_dir), "-o", str(path), "--snapshot", "Be_snapshot0",
                               "--energy-grid", "-5:2.5:11"]).exit_code == 0
    with open_store(path) as store:
        original_hash, (_, ldos) = store.content_hash(), store.read_arrays("Be_snapshot0")
    result = runner.invoke(app, ["data", "descriptors", str(path), "--rcut", "4.67637", "--twojmax", "10"])
    assert result.exit_code == 0, result.output
    expected = np.load(be2_dir / "Be_snapshot0.in.npy")[..., 3:]
    with open_store(path) as store:
        snap = store.read("Be_snapshot0")
        assert snap.descriptor_settings == MALA_SNAP_SETTINGS
        np.testing.assert_array_equal(snap.ldos, ldos)
        np.testing.assert_allclose(snap.descriptors, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
        assert store.content_hash(recompute=True) == store.content_hash()
    result = runner.invoke(app, ["data", "descriptors", str(path), "--twojmax", "4"])
    assert result.exit_code == 0, result.output
    with open_store(path) as store:
        snap = store.read("Be_snapshot0")
        assert snap.descriptors.shape == (18, 18, 27, 14)
        assert snap.descriptor_settings == {**MALA_SNAP_SETTINGS, "twojmax": 4}
        assert store.content_hash() != original_hash
    result = runner.invoke(app, ["data", "descriptors", str(path), "--rcut", "4.0"])  # twojmax 4 persists
    assert result.exit_code == 0, result.output
    with open_store(path) as store:
        snap = store.read("Be_snapshot0")
        assert snap.descriptors.shape == (18, 18, 27, 14)
        assert snap.descriptor_settings == {**MALA_SNAP_SETTINGS, "twojmax": 4, "rcut": 4.0}


def test_enlarge_writes_a_synthetic_supercell_store(be2_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "big.h5"
    result = runner.invoke(app, ["data", "enlarge", str(be2_store), "-o", str(out), "--tile", "1,1,2", "--copies", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 8 synthetic snapshots (139968 grid points" in result.output
    with open_store(out) as store, open_store(be2_store) as source:
        assert store.attrs["synthetic"] is True and store.attrs["source_content_sha256"] == source.content_hash()
        first, shifted = store.names[0], store.names[4]
        assert first == "Be_snapshot0-x1x1x2-c0" and shifted == "Be_snapshot0-x1x1x2-c1"
        x, _ = store.read_arrays(first)
        x0, _ = source.read_arrays("Be_snapshot0")
        np.testing.assert_array_equal(x[:, :, :27], x0)
        np.testing.assert_array_equal(x[:, :, 27:], x0)
        shift = store.metadata(shifted).provenance["shift_grid_steps"]
        np.testing.assert_array_equal(store.read_arrays(shifted)[0], np.roll(x, shift, axis=(0, 1, 2)))
    bad = runner.invoke(app, ["data", "enlarge", str(be2_store), "-o", str(tmp_path / "x.h5"), "--tile", "2,2"])
    assert bad.exit_code != 0 and isinstance(bad.exception, ConfigError) and "--tile '2,2'" in str(bad.exception)
