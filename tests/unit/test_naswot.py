"""NASWOT (paper eq. 13-14) against an independent float64 NumPy computation, and its fast path."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hpsearch.errors import ConfigError, DataError
from hpsearch.model.network import NetworkSpec, build_network
from hpsearch.scoring import (
    WORST_SCORE,
    default_init_params,
    init_seeds,
    mean_score,
    naswot_mean_score,
    naswot_result,
    naswot_score,
    score_architectures,
    score_architectures_parallel,
)

K = 1e-4

# ---------------------------------------------------------------- independent reference (NumPy)

_DERIVATIVES = {
    torch.nn.ReLU: lambda z: (z > 0).astype(np.float64),
    torch.nn.LeakyReLU: lambda z: np.where(z > 0, 1.0, 0.01),
    torch.nn.Tanh: lambda z: 1.0 - np.tanh(z) ** 2,
    torch.nn.Sigmoid: lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2,
    torch.nn.ELU: lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0))),
    torch.nn.Softplus: lambda z: 1.0 / (1.0 + np.exp(-z)),
}
_FUNCTIONS = {
    torch.nn.ReLU: lambda z: np.maximum(z, 0.0),
    torch.nn.LeakyReLU: lambda z: np.where(z > 0, z, 0.01 * z),
    torch.nn.Tanh: np.tanh,
    torch.nn.Sigmoid: lambda z: 1.0 / (1.0 + np.exp(-z)),
    torch.nn.ELU: lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    torch.nn.Softplus: lambda z: np.log1p(np.exp(z)),
}


def reference_jacobian(net: torch.nn.Sequential, x: np.ndarray) -> np.ndarray:
    """d(sum of outputs)/dx per sample by hand-written forward and backward passes in float64."""
    layers = [m for m in net if not isinstance(m, torch.nn.Dropout)]
    pre_activations, h = [], x.astype(np.float64)
    for layer in layers:
        if isinstance(layer, torch.nn.Linear):
            h = h @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
        else:
            pre_activations.append(h)
            h = _FUNCTIONS[type(layer)](h)
    grad = np.ones_like(h)
    for layer in reversed(layers):
        if isinstance(layer, torch.nn.Linear):
            grad = grad @ layer.weight.detach().double().numpy()
        else:
            grad = grad * _DERIVATIVES[type(layer)](pre_activations.pop())
    return grad


def reference_score(net: torch.nn.Sequential, x: np.ndarray, k: float = K) -> float:
    corr = np.clip(np.corrcoef(reference_jacobian(net, x)), -1.0, 1.0)
    eigenvalues = np.linalg.eigvalsh(corr)
    return float(np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


def mlp(widths: tuple[int, ...], activation: type[torch.nn.Module], n_in: int = 12, n_out: int = 5,
        seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for n_prev, width in zip((n_in, *widths), widths):
        layers += [torch.nn.Linear(n_prev, width), activation()]
    layers.append(torch.nn.Linear(widths[-1] if widths else n_in, n_out))
    return torch.nn.Sequential(*layers)


@pytest.fixture(scope="module")
def be2_batch(be2_dir: Path) -> torch.Tensor:
    """64 grid points of real Be2 SNAP descriptors (91 features), standardised per feature."""
    x = np.load(be2_dir / "Be_snapshot0.in.npy")[..., 3:].reshape(-1, 91).astype(np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    rows = np.random.default_rng(0).choice(len(x), size=64, replace=False)
    return torch.from_numpy(x[rows])


@pytest.fixture(scope="module")
def small_batch() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).normal(size=(10, 12)))


# ---------------------------------------------------------------- eq. 13 against the reference

@pytest.mark.parametrize("activation", list(_FUNCTIONS))
@pytest.mark.parametrize("widths", [(7,), (16, 9), (20, 20, 20)])
def test_score_matches_float64_reference(activation: type[torch.nn.Module], widths: tuple[int, ...],
                                         small_batch: torch.Tensor) -> None:
    net = mlp(widths, activation, seed=len(widths))
    expected = reference_score(net, small_batch.numpy())
    assert naswot_score(net, small_batch) == pytest.approx(expected, rel=1e-9)
    assert naswot_score(net, small_batch, convention="v1") == pytest.approx(-expected, rel=1e-9)
    assert naswot_score(net, small_batch, k=1e-2) == pytest.approx(reference_score(net, small_batch.numpy(), 1e-2), rel=1e-9)


@pytest.mark.parametrize("activations", ["ReLU", "Tanh", "Sigmoid", ("LeakyReLU", "ELU")])
def test_score_on_real_be2_descriptors(activations: str | tuple[str, ...], be2_batch: torch.Tensor) -> None:
    spec = NetworkSpec(n_in=91, n_out=11, widths=(100, 40), activations=activations)
    net = build_network(spec, seed=3)
    batch = be2_batch.float()  # float32 as stored; the score evaluates it in float64
    expected = reference_score(net, batch.double().numpy())
    assert naswot_score(net, batch) == pytest.approx(expected, rel=1e-9)


def test_model_is_left_unchanged(small_batch: torch.Tensor) -> None:
    net = mlp((8,), torch.nn.Tanh)
    net.train()
    before = [p.detach().clone() for p in net.parameters()]
    naswot_score(net, small_batch)
    assert net.training and all(p.dtype == torch.float32 for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_dropout_is_off_while_scoring(small_batch: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(12, 30), torch.nn.Tanh(), torch.nn.Dropout(0.5), torch.nn.Linear(30, 4))
    assert naswot_score(net, small_batch) == pytest.approx(reference_score(net, small_batch.numpy()), rel=1e-9)


# ---------------------------------------------------------------- eq. 14, seeds

def test_mean_score_is_mean_plus_population_std() -> None:
    assert mean_score([1.0, 2.0, 3.0]) == pytest.approx(2.0 + math.sqrt(2.0 / 3.0), rel=1e-15)
    assert mean_score([5.0]) == 5.0


def test_init_seeds_distinct_and_reproducible() -> None:
    seeds = init_seeds(0, 5)
    assert len(set(seeds)) == 5 and seeds == init_seeds(0, 5)
    assert set(seeds).isdisjoint(init_seeds(1, 5))
    assert init_seeds(0, 7)[:5] == seeds  # more initialisations extend, never reshuffle
    with pytest.raises(ConfigError, match="n_init"):
        init_seeds(0, 0)
    with pytest.raises(ConfigError, match="seed"):
        init_seeds(-1, 5)


@pytest.mark.parametrize("convention", ["paper", "v1"])
def test_mean_score_against_reference(convention: str, be2_batch: torch.Tensor) -> None:
    spec = NetworkSpec(n_in=91, n_out=11, widths=(64,), activations="Sigmoid")
    result = naswot_mean_score(spec, be2_batch, n_init=4, seed=7, convention=convention)  # type: ignore[arg-type]
    sign = 1.0 if convention == "paper" else -1.0
    per_init = [sign * reference_score(build_network(spec, s), be2_batch.numpy()) for s in init_seeds(7, 4)]
    assert result.ok and result.seeds == init_seeds(7, 4)
    assert result.scores == pytest.approx(per_init, rel=1e-9)
    assert np.std(per_init) > 0  # distinct initialisations, so eq. 14's std term is not zero
    assert result.score == pytest.approx(np.mean(per_init) + np.std(per_init), rel=1e-9)


# ---------------------------------------------------------------- degenerate input

def test_nan_batch_gives_worst_and_reason(small_batch: torch.Tensor) -> None:
    batch = small_batch.clone()
    batch[3, 4] = float("nan")
    result = naswot_result(mlp((8,), torch.nn.Tanh), batch)
    assert result.score == WORST_SCORE and "non-finite" in str(result.reason)


def test_dead_network_gives_worst(small_batch: torch.Tensor, caplog: pytest.LogCaptureFixture) -> None:
    net = mlp((8,), torch.nn.ReLU)
    with torch.no_grad():
        net[0].bias.fill_(-1e3)  # every ReLU inactive for every sample
    with caplog.at_level(logging.WARNING, logger="hpsearch.scoring.naswot"):
        score = naswot_score(net, small_batch)
    assert score == WORST_SCORE and "dead network" in caplog.text


def test_partly_dead_network_and_nan_weights(small_batch: torch.Tensor) -> None:
    net = mlp((1,), torch.nn.ReLU)  # a single ReLU: inactive for about half of the samples
    result = naswot_result(net, small_batch)
    assert result.score == WORST_SCORE and "samples" in str(result.reason)
    net = mlp((8,), torch.nn.Tanh)
    with torch.no_grad():
        net[2].weight[0, 0] = float("nan")
    result = naswot_result(net, small_batch)
    assert result.score == WORST_SCORE and "non-finite" in str(result.reason)


def test_constant_gradients_give_worst(small_batch: torch.Tensor) -> None:
    linear = mlp((8, 8), torch.nn.Identity)  # J is the same for every sample
    assert "constant gradients" in str(naswot_result(linear, small_batch).reason)
    same = small_batch[:1].repeat(10, 1)  # identical samples
    result = naswot_result(mlp((8,), torch.nn.Tanh), same)
    assert result.score == WORST_SCORE and "constant gradients" in str(result.reason)
    # the paper's formula itself would rank these best (N - 1 zero eigenvalues): they are not
    assert naswot_score(mlp((8,), torch.nn.Tanh), small_batch) > WORST_SCORE


def test_one_degenerate_initialisation_makes_the_mean_worst(small_batch: torch.Tensor) -> None:
    def build(spec: object, seed: int) -> torch.nn.Module:
        net = mlp((6,), torch.nn.Tanh, seed=seed)
        if seed == init_seeds(0, 3)[1]:
            with torch.no_grad():
                net[0].weight.fill_(float("inf"))
        return net

    result = naswot_mean_score(NetworkSpec(n_in=12, n_out=5, widths=(6,)), small_batch, n_init=3, build_fn=build)
    assert result.score == WORST_SCORE and not result.ok
    assert str(init_seeds(0, 3)[1]) in str(result.reason)
    assert all(math.isfinite(s) for s in result.scores)


# ---------------------------------------------------------------- validation

def test_batch_and_option_validation(small_batch: torch.Tensor) -> None:
    net = mlp((8,), torch.nn.Tanh)
    with pytest.raises(ConfigError, match="zero eigenvalues"):
        naswot_score(net, torch.randn(13, 12))  # more samples than the 12 features
    with pytest.raises(ConfigError, match="at least 2"):
        naswot_score(net, torch.randn(1, 12))
    with pytest.raises(DataError, match="2-D"):
        naswot_score(net, torch.randn(12))
    with pytest.raises(DataError, match="could not evaluate"):
        naswot_score(net, torch.randn(5, 7))
    with pytest.raises(ConfigError, match="k="):
        naswot_score(net, small_batch, k=0.0)
    with pytest.raises(ConfigError, match="convention"):
        naswot_score(net, small_batch, convention="v2")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="n_in=91"):
        naswot_mean_score(NetworkSpec(n_in=91, n_out=11, widths=(8,)), small_batch)


# ---------------------------------------------------------------- fast path

SPECS = [
    NetworkSpec(n_in=91, n_out=11, widths=w, activations=a, dropout=d)
    for w, a, d in [
        ((32,), "ReLU", 0.0), ((64, 16), "Tanh", 0.0), ((16, 64, 16), "Sigmoid", 0.0),
        ((48, 48), ("LeakyReLU", "ELU"), 0.1), ((24,), "PReLU", 0.0), ((40, 20), "SiLU", 0.0),
        ((2,), "ReLU", 0.0),
    ]
]


def test_default_init_params_replay_build_network() -> None:
    for spec in SPECS:
        built = [m for m in build_network(spec, seed=123) if isinstance(m, torch.nn.Linear)]
        replayed = default_init_params([spec.n_in, *spec.widths, spec.n_out], 123)
        assert all(torch.equal(m.weight, w) and torch.equal(m.bias, b) for m, (w, b) in zip(built, replayed))


def test_fast_path_equals_one_network_at_a_time(be2_batch: torch.Tensor) -> None:
    fast = score_architectures(SPECS, be2_batch, n_init=3, seed=5, progress=False)
    for spec, result in zip(SPECS, fast):
        reference = naswot_mean_score(spec, be2_batch, n_init=3, seed=5)
        assert result.reason == reference.reason
        assert result.scores == pytest.approx(reference.scores, rel=1e-12)
        assert result.score == pytest.approx(reference.score, rel=1e-12)
    assert fast[-1].score == WORST_SCORE  # width-2 ReLU layer: dead for some samples


def test_fast_path_with_other_initialisation_and_modules(small_batch: torch.Tensor) -> None:
    """A builder with its own init (not replayable) and a non-Sequential model still score exactly."""

    class Wrapped(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    def xavier(spec: NetworkSpec, seed: int) -> torch.nn.Module:
        net = build_network(spec, seed)
        generator = torch.Generator().manual_seed(seed)
        for module in net:
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.xavier_normal_(module.weight, generator=generator)
        return net

    specs = [NetworkSpec(n_in=12, n_out=5, widths=(w,), activations="Tanh") for w in (6, 9)]
    for build in (xavier, lambda spec, seed: Wrapped(build_network(spec, seed))):
        fast = score_architectures(specs, small_batch, n_init=2, progress=False, build_fn=build)
        for spec, result in zip(specs, fast):
            reference = naswot_mean_score(spec, small_batch, n_init=2, build_fn=build)
            assert result.score == pytest.approx(reference.score, rel=1e-12)


def test_float32_option_is_close(be2_batch: torch.Tensor) -> None:
    specs = SPECS[:3]
    exact = score_architectures(specs, be2_batch, n_init=2, progress=False)
    single = score_architectures(specs, be2_batch, n_init=2, progress=False, dtype=torch.float32)
    for a, b in zip(exact, single):
        assert b.score == pytest.approx(a.score, rel=1e-3)
    with pytest.raises(ConfigError, match="dtype"):
        score_architectures(specs, be2_batch, progress=False, dtype=torch.float16)


@pytest.mark.ray
def test_ray_chunks_equal_serial(ray_local: object, be2_batch: torch.Tensor) -> None:
    specs = SPECS * 2
    serial = score_architectures(specs, be2_batch, n_init=2, progress=False)
    parallel = score_architectures_parallel(specs, be2_batch, n_init=2, progress=False, n_chunks=3)
    assert [r.reason for r in parallel] == [r.reason for r in serial]
    for a, b in zip(serial, parallel):
        assert b.scores == pytest.approx(a.scores, rel=1e-12)
    from hpsearch.parallel import is_driver

    assert is_driver()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("eig_device", [None, "cpu"])
def test_fast_path_on_cuda_equals_cpu(be2_batch: torch.Tensor, eig_device: str | None) -> None:
    on_cpu = score_architectures(SPECS, be2_batch, n_init=3, seed=5, progress=False)
    on_gpu = score_architectures(SPECS, be2_batch.cuda(), n_init=3, seed=5, progress=False, eig_device=eig_device)
    assert [r.ok for r in on_gpu] == [r.ok for r in on_cpu]
    for cpu, gpu in zip(on_cpu, on_gpu):
        assert gpu.scores == pytest.approx(cpu.scores, rel=1e-9)
        assert gpu.score == pytest.approx(cpu.score, rel=1e-9)


def test_unknown_or_absent_devices_are_config_errors(be2_batch: torch.Tensor) -> None:
    with pytest.raises(ConfigError, match="eig_device='gpu' is not a device"):
        score_architectures(SPECS[:2], be2_batch, n_init=2, progress=False, eig_device="gpu")
    with pytest.raises(ConfigError, match="device='tpu0' is not a device"):
        score_architectures(SPECS[:2], be2_batch, n_init=2, progress=False, device="tpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device is visible"):
            score_architectures(SPECS[:2], be2_batch, n_init=2, progress=False, device="cuda")


# ---------------------------------------------------------------- the sign, by hand
class _Square(torch.nn.Module):
    """f(x) = sum(x^2) / 2 per sample: its input Jacobian row of sample i is x_i itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).sum(dim=1, keepdim=True)


def _two_rows(c: float) -> torch.Tensor:
    """Two centred rows with correlation exactly c."""
    u = np.array([1.0, -1.0, 0.0, 0.0]) / math.sqrt(2.0)
    v = np.array([0.0, 0.0, 1.0, -1.0]) / math.sqrt(2.0)
    return torch.tensor(np.stack([u, c * u + math.sqrt(1.0 - c * c) * v]), dtype=torch.float64)


def _by_hand(c: float) -> float:
    """S of the 2x2 correlation matrix [[1, c], [c, 1]]: eigenvalues 1 - c and 1 + c."""
    return sum(math.log(lam + K) + 1.0 / (lam + K) for lam in (1.0 - c, 1.0 + c))


@pytest.mark.parametrize("c", [0.1, 0.9])
def test_both_signs_against_a_hand_computed_two_sample_matrix(c: float) -> None:
    from hpsearch.scoring.proxies import proxy_score

    batch = _two_rows(c)
    paper = naswot_result(_Square(), batch, k=K, convention="paper")
    v1 = naswot_result(_Square(), batch, k=K, convention="v1")
    assert paper.ok and v1.ok
    assert paper.score == pytest.approx(_by_hand(c), rel=1e-12)
    assert v1.score == pytest.approx(-_by_hand(c), rel=1e-12)
    # the registered proxies: naswot and its alias naswot-paper are the paper's sign, naswot-v1 the opposite
    assert proxy_score("naswot", _Square(), batch) == pytest.approx(_by_hand(c), rel=1e-12)
    assert proxy_score("naswot-paper", _Square(), batch) == pytest.approx(_by_hand(c), rel=1e-12)
    assert proxy_score("naswot-v1", _Square(), batch) == pytest.approx(-_by_hand(c), rel=1e-12)


def test_the_paper_sign_prefers_correlated_jacobians_and_v1_uncorrelated() -> None:
    from hpsearch.scoring.proxies import proxy_score

    low, high = _two_rows(0.1), _two_rows(0.9)
    # by hand: S(0.9) = f(0.1) + f(1.9) ~ 8.86 > S(0.1) = f(0.9) + f(1.1) ~ 2.01, f(x) = log(x + k) + 1/(x + k)
    assert _by_hand(0.9) == pytest.approx(8.857, abs=1e-3) and _by_hand(0.1) == pytest.approx(2.010, abs=1e-3)
    for name in ("naswot", "naswot-paper"):
        assert proxy_score(name, _Square(), high) > proxy_score(name, _Square(), low)
    assert proxy_score("naswot-v1", _Square(), low) > proxy_score("naswot-v1", _Square(), high)
