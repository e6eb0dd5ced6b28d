"""Bad input gets a clear error naming the argument (and the layer inside serial)."""

import math
from unittest import mock

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.errors import (
    HyperparameterError,
    InputValueError,
    MemoryPlanError,
    ShapeError,
)

MLP = wn.serial(wn.Dense(8), wn.Relu(), wn.Dense(1))
CNN = wn.serial(wn.Conv2d(8, 3), wn.Relu(), wn.GlobalAvgPool(), wn.Dense(1))


@pytest.mark.parametrize("make, match", [
    (lambda: wn.Dense(8, weight_std=-1.0), "weight_std"),
    (lambda: wn.Dense(8, weight_std=math.nan), "weight_std"),
    (lambda: wn.Dense(8, bias_std=math.inf), "bias_std"),
    (lambda: wn.Dense(0), "out_features"),
    (lambda: wn.Dense(8, parameterization="mup"), "parameterization"),
    (lambda: wn.Conv2d(8, 3, padding="reflect"), "padding"),
    (lambda: wn.Conv2d(8, (3, 3, 3)), "kernel_size"),
    (lambda: wn.Conv2d(8, 3, stride=0), "stride"),
    (lambda: wn.Erf(a=math.nan), "`a`"),
    (lambda: wn.Monomial(-1), "degree"),
    (lambda: wn.Elementwise("torch.nonexistent"), "fn"),
    (lambda: wn.Elementwise(torch.tanh, degree=0), "degree"),
    (lambda: wn.LayerNorm(axis=0), None),
    (lambda: wn.serial(wn.Dense(3), "relu"), "layer 1"),
])
def test_impossible_hyperparameters(make, match):
    with pytest.raises(wn.WidenetsError, match=match):
        make().kernel(torch.ones(2, 3, 4, 4)) if match is None else make()


def test_wrong_rank_names_the_layer_and_its_index():
    with pytest.raises(ShapeError, match=r"layer 0 \(Conv2d\).*\(C, H, W\)"):
        CNN.kernel(torch.ones(3, 16))


def test_mismatched_x2():
    message = r"`x2` must have shape \(n, 5\) to match `x1`; got \(2, 4\)"
    with pytest.raises(ShapeError, match=message):
        MLP.kernel(torch.ones(3, 5), torch.ones(2, 4))


def test_channel_mismatch_in_module_is_reported_by_shape_check():
    with pytest.raises(ShapeError, match="layer 0"):
        CNN.module(seed=0, in_shape=(3, 2))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs(bad):
    x = torch.ones(3, 5)
    x[1, 2] = bad
    with pytest.raises(InputValueError, match="`x1` must be finite"):
        MLP.kernel(x)
    with pytest.raises(InputValueError, match="`x2` must be finite"):
        MLP.kernel(torch.ones(3, 5), x)


def test_other_bad_inputs():
    with pytest.raises(ShapeError, match="x1"):
        MLP.kernel(torch.ones(5))
    with pytest.raises(ShapeError, match="non-empty"):
        MLP.kernel(torch.ones(0, 5))
    with pytest.raises(InputValueError, match="numbers"):
        MLP.kernel(np.array([["a", "b"]]))
    with pytest.raises(HyperparameterError, match="get"):
        MLP.kernel(torch.ones(2, 5), get="cov")
    with pytest.raises(HyperparameterError, match="dtype"):
        MLP.kernel(torch.ones(2, 5), dtype=torch.float16)


def test_layer_norm_after_a_nonlinearity_is_refused():
    net = wn.serial(wn.Dense(8), wn.Relu(), wn.LayerNorm(), wn.Dense(1))
    with pytest.raises(HyperparameterError, match=r"layer 2 \(LayerNorm\).*Gaussian"):
        net.kernel(torch.ones(2, 3))


def test_summing_correlated_branches_is_refused():
    net = wn.serial(wn.Dense(8), wn.Relu(), wn.FanOut(2), wn.parallel(wn.Relu(), wn.Identity()),
                    wn.FanInSum(), wn.Dense(1))
    with pytest.raises(HyperparameterError, match="correlated"):
        net.kernel(torch.ones(2, 3))


def test_gap_kernel_too_large_for_memory_says_how_much_and_suggests_tiling():
    # circular padding takes the general engine, whose working set is planned up front
    circular = wn.serial(wn.Conv2d(8, 3, padding="circular"), wn.Relu(), wn.GlobalAvgPool(),
                         wn.Dense(1))
    x = torch.zeros(100, 1, 64, 64)
    with pytest.raises(MemoryPlanError, match=r"GiB.*every pair of positions.*batch_size=\d+"
                       r".*kernel_matrix"):
        circular.kernel(x)
    # the same network with a Flatten readout needs only same-position covariances: 0.4 GB
    flat = wn.serial(wn.Conv2d(4, 3), wn.Relu(), wn.Flatten(), wn.Dense(1))
    assert not flat.needs_full(False, (1, 64, 64))
    assert CNN.needs_full(False, (1, 64, 64))
    assert flat.kernel(x[:20], get="nngp").nngp.shape == (20, 20)


def test_fused_gap_path_works_in_bounded_memory_whatever_the_general_plan():
    # 'same'/'valid' stride-1 convs take the fused path, which works in cache-sized chunks:
    # no memory error even where the general engine's plan would not fit
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    with mock.patch("widenets.kernels.compute.available_memory", return_value=1):
        k = CNN.kernel(x)
        with pytest.raises(MemoryPlanError, match="batch_size"):
            CNN.kernel(x, batch_size=0)
    assert torch.allclose(k.nngp, CNN.kernel(x).nngp, rtol=0, atol=0)
