"""Blocked train/test kernels equal the whole computation; progress adds up."""

import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError, ShapeError
from widenets.predict import pair_count, train_test_kernels

NET = wn.serial(wn.Conv2d(4, 3, padding="same", weight_std=1.4, bias_std=0.1), wn.Relu(),
                wn.GlobalAvgPool(), wn.Dense(1, 1.0, 0.1))


def test_blocks_equal_the_whole_and_report_every_pair():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(11, 2, 4, 4, generator=gen, dtype=torch.float64)
    xt = torch.randn(5, 2, 4, 4, generator=gen, dtype=torch.float64)
    seen = []
    k_dd, k_td = train_test_kernels(NET, x, xt, block_size=4, callback=seen.append)
    whole_dd, whole_td = NET.kernel(x), NET.kernel(xt, x)
    for g in ("nngp", "ntk"):
        torch.testing.assert_close(getattr(k_dd, g), getattr(whole_dd, g), rtol=1e-13, atol=0)
        torch.testing.assert_close(getattr(k_td, g), getattr(whole_td, g), rtol=1e-13, atol=0)
    assert torch.equal(k_dd.ntk, k_dd.ntk.T)
    assert sum(seen) == pair_count(11, 5) == 11 * 12 // 2 + 55
    only, none = train_test_kernels(NET, x, get="nngp", block_size=100)
    assert none is None and only.ntk is None
    torch.testing.assert_close(only.nngp, whole_dd.nngp, rtol=1e-13, atol=0)


def test_errors():
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    with pytest.raises(HyperparameterError, match="`block_size` must be a positive int"):
        train_test_kernels(NET, x, block_size=0)
    with pytest.raises(ShapeError, match="`x_test` must have shape"):
        train_test_kernels(NET, x, torch.randn(2, 2, 5, 5))
