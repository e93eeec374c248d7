"""The proxy zoo against independent NumPy (or plain-loop torch) computations of each definition."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hpsearch.errors import ConfigError
from hpsearch.model import NetworkSpec, build_network
from hpsearch.scoring.proxies import PROXIES, WORST_SCORE, ProxyRegistry, proxy_result, proxy_score, score_proxies
from hpsearch.scoring.proxies.many import score_architectures_proxies
from hpsearch.scoring.proxies.representation import meco_units

N_IN, N_OUT, N = 24, 6, 20

_ACT = {
    "ReLU": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "Tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "Sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(N, N_IN)), rng.uniform(size=(N, N_OUT))


def _net(activation: str, widths: tuple[int, ...] = (16, 12), seed: int = 3) -> torch.nn.Sequential:
    return build_network(NetworkSpec(n_in=N_IN, n_out=N_OUT, widths=widths, activations=activation), seed=seed)


def _layers(net: torch.nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
            for m in net.modules() if isinstance(m, torch.nn.Linear)]


def _forward(layers, activation, x):
    """NumPy forward: per hidden layer (pre, post), and the output."""
    f = _ACT[activation][0]
    records, a = [], x
    for w, b in layers[:-1]:
        z = a @ w.T + b
        a = f(z)
        records.append((z, a))
    w, b = layers[-1]
    return records, a @ w.T + b


def _backward(layers, activation, x, d_out):
    """NumPy backprop of d_out (N, n_out) through the MLP: dL/dW per layer."""
    records, _ = _forward(layers, activation, x)
    inputs = [x] + [post for _, post in records]
    grads = [None] * len(layers)
    delta = d_out
    for i in range(len(layers) - 1, -1, -1):
        grads[i] = delta.T @ inputs[i]
        if i:
            delta = (delta @ layers[i][0]) * _ACT[activation][1](records[i - 1][0])
    return grads


@pytest.mark.parametrize("activation", ["ReLU", "Tanh"])
def test_naswot_and_v1_match_numpy(data, activation):
    x, _ = data
    net = _net(activation)
    layers = _layers(net)
    jac = []
    for row in x:  # the input gradient of the sum of outputs, one sample at a time
        records, _ = _forward(layers, activation, row[None])
        delta = np.ones((1, N_OUT))
        for i in range(len(layers) - 1, 0, -1):
            delta = (delta @ layers[i][0]) * _ACT[activation][1](records[i - 1][0])
        jac.append((delta @ layers[0][0])[0])
    corr = np.clip(np.corrcoef(np.array(jac)), -1, 1)
    lam = np.linalg.eigvalsh(corr)
    expected = float(np.sum(np.log(lam + 1e-4) + 1 / (lam + 1e-4)))
    assert proxy_score("naswot", net, x) == pytest.approx(expected, rel=1e-9)
    assert proxy_score("naswot-v1", net, x) == pytest.approx(-expected, rel=1e-9)


@pytest.mark.parametrize("activation", ["ReLU", "Sigmoid"])
def test_logdet_matches_hamming_kernel(data, activation):
    x, _ = data
    net = _net(activation, widths=(16, 12))
    records, _ = _forward(_layers(net), activation, x)
    codes = np.concatenate([pre > 0 for pre, _ in records], axis=1)
    n_units = codes.shape[1]
    kernel = np.array([[n_units - np.sum(ci != cj) for cj in codes] for ci in codes], dtype=float)
    sign, expected = np.linalg.slogdet(kernel)
    assert sign > 0
    assert proxy_score("logdet", net, x) == pytest.approx(expected, rel=1e-9)


def test_logdet_singular_kernel_is_worst_with_reason(data):
    x, _ = data
    net = _net("ReLU", widths=(4,))  # N = 20 samples, at most 5 = N_A + 1 independent codes
    result = proxy_result("logdet", net, x)
    assert result.score == WORST_SCORE
    assert "singular kernel" in result.reason and "N_A + 1 = 5" in result.reason


@pytest.mark.parametrize("activation", ["ReLU", "Tanh"])
def test_synflow_matches_numpy(activation):
    net = _net(activation)
    layers = [(np.abs(w), np.abs(b)) for w, b in _layers(net)]
    ones = np.ones((1, N_IN))
    grads = _backward(layers, activation, ones, np.ones((1, N_OUT)))
    expected = sum(float(np.sum(np.abs(w * g))) for (w, _), g in zip(layers, grads))
    assert proxy_score("synflow", net, np.zeros((3, N_IN))) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("activation", ["ReLU", "Sigmoid"])
def test_snip_and_grad_norm_match_numpy(data, activation):
    x, y = data
    net = _net(activation)
    layers = _layers(net)
    _, out = _forward(layers, activation, x)
    grads = _backward(layers, activation, x, 2 * (out - y) / out.size)  # d mean((out - y)^2)
    snip = sum(float(np.sum(np.abs(w * g))) for (w, _), g in zip(layers, grads))
    norm = sum(float(np.linalg.norm(g)) for g in grads)
    assert proxy_score("snip", net, x, targets=y) == pytest.approx(snip, rel=1e-10)
    assert proxy_score("grad-norm", net, x, targets=y) == pytest.approx(norm, rel=1e-10)


def test_zico_matches_per_sample_loop(data):
    x, y = data
    net = _net("Tanh")
    layers = _layers(net)
    per_sample = []
    for i in range(N):
        _, out = _forward(layers, "Tanh", x[i : i + 1])
        per_sample.append(_backward(layers, "Tanh", x[i : i + 1], 2 * (out - y[i : i + 1]) / N_OUT))
    expected = 0.0
    for layer in range(len(layers)):
        g = np.stack([s[layer] for s in per_sample])
        std, mean_abs = g.std(axis=0), np.abs(g).mean(axis=0)
        expected += math.log(np.sum(mean_abs[std > 0] / std[std > 0]))
    assert proxy_score("zico", net, x, targets=y) == pytest.approx(expected, rel=1e-9)


def test_meco_and_near_match_numpy(data):
    x, _ = data
    net = _net("Tanh", widths=(16, 12))
    records, out = _forward(_layers(net), "Tanh", x)
    meco = 0.0
    for index, (_, post) in enumerate(records):
        units = meco_units(post.shape[1], 5, index)
        meco += post.shape[1] * np.linalg.eigvalsh(np.corrcoef(post[:, units].T))[0]

    def erank(m):
        s = np.linalg.svd(m, compute_uv=False)
        p = s / s.sum()
        p = p[p > 0]
        return math.exp(-np.sum(p * np.log(p)))

    near = erank(out) + sum(erank(pre) + erank(post) for pre, post in records)
    assert proxy_score("meco", net, x, seed=5) == pytest.approx(meco, rel=1e-9)
    assert proxy_score("near", net, x) == pytest.approx(near, rel=1e-9)


def test_params_and_flops_closed_form():
    net = _net("ReLU", widths=(16, 12))
    assert proxy_score("params", net, np.zeros((2, N_IN))) == (24 * 16 + 16) + (16 * 12 + 12) + (12 * 6 + 6)
    assert proxy_score("flops", net, np.zeros((2, N_IN))) == 2 * (24 * 16 + 16 * 12 + 12 * 6)


def test_stacked_fast_path_equals_one_network_at_a_time(data):
    x, y = data
    specs = [NetworkSpec(n_in=N_IN, n_out=N_OUT, widths=w, activations=a)
             for w, a in (((16,), "ReLU"), ((8, 32), "Tanh"), ((32, 16, 8), "Sigmoid"), ((2,), "LeakyReLU"))]
    fast = score_architectures_proxies(specs, x, y, n_init=3, seed=1)
    slow = score_architectures_proxies(specs, x, y, n_init=3, seed=1, fast=False)
    for f, s in zip(fast, slow):
        assert f.reasons.keys() == s.reasons.keys()
        for name in PROXIES:
            # near's fast path takes singular values from Gram matrices: rounding ~1e-7 relative
            rel = 1e-7 if name == "near" else 1e-9
            assert f.scores[name] == pytest.approx(s.scores[name], rel=rel, abs=1e-9), name
    assert "logdet" in fast[3].reasons  # width 2: 20 samples cannot have distinct codes


def test_naswot_eq14_over_initialisations(data):
    from hpsearch.scoring import naswot_mean_score

    x, y = data
    spec = NetworkSpec(n_in=N_IN, n_out=N_OUT, widths=(16,), activations="ReLU")
    (row,) = score_architectures_proxies([spec], x, y, names=["naswot"], n_init=4, seed=2)
    assert row.scores["naswot"] == pytest.approx(naswot_mean_score(spec, x, n_init=4, seed=2).score, rel=1e-10)


def test_errors_are_actionable(data):
    x, y = data
    net = _net("ReLU")
    with pytest.raises(ConfigError, match="unknown proxy 'nope'.*synflow"):
        proxy_score("nope", net, x)
    with pytest.raises(ConfigError, match="needs targets"):
        proxy_score("snip", net, x)
    with pytest.raises(ConfigError, match="exceeds the 24 input features"):
        proxy_score("naswot", net, np.zeros((30, N_IN)))
    with pytest.raises(Exception, match="rows but the batch has"):
        proxy_score("snip", net, x, targets=y[:5])
    assert set(score_proxies(net, x)) == set(PROXIES) - {"snip", "grad-norm", "zico"}


def test_entry_point_plugin_is_registered(tmp_path, monkeypatch, data):
    x, _ = data
    package = tmp_path / "myproxies.py"
    package.write_text("def widest(model, batch, targets, seed):\n"
                       "    return max(p.shape[0] for p in model.parameters())\n")
    dist = tmp_path / "myproxies-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myproxies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [hpsearch.proxies]
        widest = myproxies:widest
        synflow = myproxies:widest
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from hpsearch.scoring.proxies._registry import _BUILTIN

    registry = ProxyRegistry(_BUILTIN)
    assert "widest" in registry
    assert registry["synflow"] is PROXIES["synflow"]  # a plug-in never replaces a built-in
    from hpsearch.scoring.proxies import ProxyContext

    assert registry["widest"](ProxyContext(_net("ReLU", widths=(16, 12)), x)).score == 16.0
    sys.modules.pop("myproxies", None)
    assert Path(package).exists()
