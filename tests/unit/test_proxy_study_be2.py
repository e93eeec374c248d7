"""The proxy study on real Be2 data: exhaustive mode, judged on the validation LDOS RMSE with the band
energy beside it, the new columns (top-1 rank, best rank in the top 5, top-1 regret), params and both
NASWOT signs always in the table, the training settings with it, and no test snapshot ever read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau, rankdata

from hpsearch.data.store import SnapshotStore
from hpsearch.errors import ConfigError
from hpsearch.physics import EnergyGrid
from hpsearch.scoring.proxy_report import markdown_table, write_study
from hpsearch.scoring.proxy_study import ProxyStudyConfig, run_proxy_study


@pytest.fixture(scope="module")
def be2_store(be2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hpsearch.data.mala import import_mala

    return import_mala(be2_dir, tmp_path_factory.mktemp("be2") / "be2.h5", EnergyGrid(-5.0, 2.5, 11))


def test_exhaustive_study_on_be2_reads_no_test_snapshot(be2_store: Path, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    torch.set_num_threads(1)  # the machine is shared
    read: list[str] = []
    for method in ("read_arrays", "read_rows", "read"):
        original = getattr(SnapshotStore, method)

        def spy(self: SnapshotStore, name: str, *args: object, _original: object = original) -> object:
            read.append(name)
            return _original(self, name, *args)  # type: ignore[operator]

        monkeypatch.setattr(SnapshotStore, method, spy)
    config = ProxyStudyConfig(store=str(be2_store), architectures="all", depths=(1,), widths=(8, 16),
                              activations=("ReLU", "Sigmoid"), n_train=2, n_validation=1, n_test=1, max_epochs=4,
                              patience=2, n_init=2, batch_size=32, n_bootstrap=20, tracking=False,
                              proxies=("synflow",), ensembles=())
    study = run_proxy_study(config)

    # a 2/1/1 split as a search makes it: the fourth snapshot is the test one, never read
    assert list(study.split["train"]) == ["Be_snapshot0", "Be_snapshot1"]
    assert list(study.split["validation"]) == ["Be_snapshot2"] and study.held_out == ("Be_snapshot3",)
    assert read and "Be_snapshot3" not in read and set(read) <= {"Be_snapshot0", "Be_snapshot1", "Be_snapshot2"}
    # every depth x width x activation, once
    assert sorted(r.label for r in study.rows) == ["16 ReLU", "16 Sigmoid", "8 ReLU", "8 Sigmoid"]
    assert all(np.isfinite(r.val_ldos_rmse) and r.val_ldos_rmse > 0 for r in study.rows)
    # params and both NASWOT signs are always there, beside the proxies asked for
    rows = {c.name: c for c in study.calibration}
    assert set(rows) == {"synflow", "params", "naswot", "naswot-v1"}

    # independently from the rows: tau against the LDOS RMSE, tau against the band energy, ranks, regret
    loss = np.array([r.val_ldos_rmse for r in study.rows])
    band = np.array([r.val_error_mev_per_atom for r in study.rows])
    ranks = rankdata(loss, method="min")
    for name, c in rows.items():
        scores = np.array([r.scores[name] for r in study.rows])
        assert c.tau == pytest.approx(kendalltau(scores, loss).statistic, abs=1e-12)
        assert c.tau_second == pytest.approx(kendalltau(scores, band).statistic, abs=1e-12)
        top = scores == scores.max()  # params ties the two activations of one shape
        assert c.top1_rank == pytest.approx(ranks[top].mean()) and c.n_top1_tied == int(top.sum())
        assert c.top1_regret == pytest.approx(loss[top].mean() / loss.min())
        assert c.top5_rank == 1.0  # 4 architectures: the top 5 hold them all
    assert rows["params"].n_top1_tied == 2
    assert rows["naswot"].tau != pytest.approx(rows["naswot-v1"].tau)  # the two signs side by side

    table = markdown_table(study)
    for column in ("| proxy | Kendall tau", "beats params", "top-1 rank", "best in top 5", "top-1 regret",
                   "tau vs band energy"):
        assert column in table
    assert "4 architectures, every depth x width x activation" in table
    assert "held out and never loaded: Be_snapshot3" in table
    assert "at most 4 epochs, early-stopping patience 2, Adam learning rate 0.001, mini-batch 512" in table
    assert "validation LDOS RMSE" in table and "NASWOT signs: naswot (= naswot-paper" in table
    worse = [c.name for c in study.calibration if c.name != "params" and not study.beats_params(c)]
    for name in worse:
        assert f"| {name} |" in table and table.split(f"| {name} |")[1].split("\n")[0].count("**no**") == 1
    files = write_study(study, tmp_path / "out")
    assert "val_ldos_rmse" in files["csv"].read_text().splitlines()[0]


def test_exhaustive_mode_refuses_a_sample_size() -> None:
    from hpsearch.errors import validate_mapping

    with pytest.raises(ConfigError, match="n_architectures=12 with architectures: all"):
        validate_mapping(ProxyStudyConfig, {"architectures": "all", "n_architectures": 12}, "study.yaml", "keys")
    assert ProxyStudyConfig(architectures="all", depths=(1, 2), widths=(8,), activations=("Tanh",)).size() == 2
    assert ProxyStudyConfig(proxies=("naswot-paper",)).proxy_names() == ["naswot-paper", "params", "naswot-v1"]


def test_report_test_reads_the_held_out_part_only_after_training(be2_store: Path) -> None:
    """The calibration stays on validation; with report_test each network is also scored once on
    the test part, and tau against the test LDOS RMSE is computed from those numbers."""
    torch.set_num_threads(1)
    config = ProxyStudyConfig(store=str(be2_store), architectures="all", depths=(1,), widths=(8, 16),
                              activations=("ReLU", "Tanh"), n_train=2, n_validation=1, n_test=1, max_epochs=3,
                              patience=2, n_init=2, batch_size=32, n_bootstrap=20, tracking=False,
                              proxies=("synflow",), ensembles=(), report_test=True)
    study = run_proxy_study(config)
    assert all(np.isfinite(r.test_ldos_rmse) and r.test_ldos_rmse != r.val_ldos_rmse for r in study.rows)
    by_name = {c.name: c for c in study.test_calibration}
    scores = np.array([r.scores["synflow"] for r in study.rows])
    test_loss = np.array([r.test_ldos_rmse for r in study.rows])
    assert by_name["synflow"].tau == pytest.approx(kendalltau(scores, test_loss).statistic)
    assert "Held-out test check" in markdown_table(study)
    with pytest.raises(ConfigError, match="held-out test"):
        run_proxy_study(config.model_copy(update={"n_test": None, "n_train": 3}))
