"""The C++ CNTK stage (kernels/relu_stage.cpp) against the general engine.

The general engine is an independent implementation of the same recursion (window sums with
padding copies, the dual in PyTorch), itself checked against neural-tangents; float64 results
must agree to rounding.  The native stage runs by default only for calls large enough to
repay compiling, so these tests switch it on for small inputs and count its calls.
"""

import logging

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import widenets as wn
from tests.kernels.test_gap import assert_agree, general_engine
from tests.strategies import inputs, parameterizations, stds
from widenets.kernels import native_stage

RELU_FAMILY = [wn.Relu(), wn.LeakyRelu(0.2), wn.Abs(), wn.ABRelu(-0.5, 1.2)]
# no tiny biases: with one channel and 1x1 windows a bias of 1e-8 puts correlations within
# rounding of +-1, where theta = arccos(rho) has an infinite slope and float64 fixes the kernel
# only to ~sqrt(eps) (two correct codes then differ by 1e-9 relative, seen); that case has its
# own test below
bias_stds = st.one_of(st.none(), st.just(0.0), st.floats(0.01, 0.5))


@pytest.fixture
def calls(monkeypatch):
    """Native stage on for every call; the number of its calls so far."""
    count = [0]
    call = native_stage.NativeStage.__call__

    def counted(self, *args):
        count[0] += 1
        return call(self, *args)

    monkeypatch.setattr(native_stage, "_policy", lambda work: True)
    monkeypatch.setattr(native_stage.NativeStage, "__call__", counted)
    return count


def _net(data):
    ndim = data.draw(st.integers(1, 3))
    conv = (wn.Conv1d, wn.Conv2d, wn.Conv3d)[ndim - 1]
    layers = []
    for _ in range(data.draw(st.integers(1, 3))):
        layers += [conv(data.draw(st.integers(2, 16)),
                        tuple(data.draw(st.integers(1, 3)) for _ in range(ndim)),
                        padding=data.draw(st.sampled_from(["same", "valid"])),
                        weight_std=data.draw(stds), bias_std=data.draw(bias_stds),
                        parameterization=data.draw(parameterizations)),
                   data.draw(st.sampled_from(RELU_FAMILY))]
    net = wn.serial(*layers, wn.GlobalAvgPool(), wn.Dense(1, data.draw(stds)))
    shape = (data.draw(st.integers(1, 3)),
             *(data.draw(st.integers(3, 7 if ndim < 3 else 4)) for _ in range(ndim)))
    return net, shape


# the fixture's counter is cumulative and compared before and after each call
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data(), st.integers(0, 10**6))
def test_native_stage_equals_general_engine(calls, data, seed):
    net, shape = _net(data)
    try:
        net.out_shape(shape)
    except wn.WidenetsError:  # 'valid' windows larger than the image
        return
    x1 = inputs(shape, data.draw(st.integers(2, 4)), seed)
    x2 = inputs(shape, data.draw(st.integers(1, 3)), seed + 1)
    for second in (None, x2):
        before = calls[0]
        native, reference = net.kernel(x1, second), general_engine(net, x1, second)
        assert calls[0] > before
        for kind in ("nngp", "ntk"):
            assert_agree(getattr(native, kind), getattr(reference, kind), second is None)


def test_float32_native_stage_within_float32_rounding(calls):
    net = wn.serial(*[wn.Conv2d(8, 3, padding="same", bias_std=0.1), wn.Relu()] * 4,
                    wn.GlobalAvgPool(), wn.Dense(1))
    x = inputs((3, 8, 8), 6, 2)
    k32, k64 = net.kernel(x.float(), dtype=torch.float32), general_engine(net, x)
    assert calls[0] > 0
    for kind in ("nngp", "ntk"):
        ref = getattr(k64, kind)
        # float32 rounding (6e-8 per operation) through four layers; means summed in float64
        assert (getattr(k32, kind).double() - ref).abs().max() / ref.abs().max() < 2e-6


def test_duplicated_inputs_get_correlation_one(calls):
    net = wn.serial(*[wn.Conv2d(8, 3, padding="same"), wn.Relu()] * 3, wn.GlobalAvgPool(),
                    wn.Dense(1))
    x = inputs((1, 5, 5), 3, 4)
    k = net.kernel(torch.cat([x, x[:1]]))  # input 3 is input 0 again: a native pair
    torch.testing.assert_close(k.ntk[0, 3], k.ntk[0, 0], rtol=1e-14, atol=0)
    torch.testing.assert_close(k.nngp[3], k.nngp[0], rtol=1e-14, atol=0)


def test_a_failed_build_falls_back_to_pytorch(calls, monkeypatch, caplog):
    def broken():
        raise OSError("no C++ compiler")

    monkeypatch.setattr(native_stage, "_library", broken)
    monkeypatch.setattr(native_stage, "_FAILED", [])
    net = wn.serial(wn.Conv2d(4, 3, padding="same"), wn.Relu(), wn.GlobalAvgPool(),
                    wn.Dense(1))
    x = inputs((1, 5, 5), 3, 7)
    with caplog.at_level(logging.WARNING, logger="widenets"):
        k = net.kernel(x)
    assert calls[0] == 0 and "could not be built" in caplog.text
    torch.testing.assert_close(k.ntk, general_engine(net, x).ntk, rtol=1e-12, atol=0)


def test_correlations_of_exactly_one_snap_as_in_pytorch(calls):
    # a 1x1 convolution of one channel makes every correlation +-1 up to rounding; the
    # variance product rounds differently from the product of square roots, and both snaps of
    # the PyTorch path are needed (found by hypothesis: the second snap alone was missing)
    net = wn.serial(wn.Conv3d(2, 1, padding="same", weight_std=0.3, bias_std=0.0,
                              parameterization="standard"), wn.Relu(), wn.GlobalAvgPool(),
                    wn.Dense(1))
    _agrees_with_general_engine(net, inputs((1, 3, 3, 3), 2, 0), inputs((1, 3, 3, 3), 2, 1),
                                calls, rtol=1e-12)


def test_correlations_within_rounding_of_one_agree_to_sqrt_eps(calls):
    # the ill-conditioned case excluded above: 1 - rho ~ 1e-16, so whether a correlation
    # snaps to 1 depends on the last bits, and the angle then moves by up to sqrt(8 eps)
    net = wn.serial(wn.Conv1d(2, 1, padding="same", bias_std=1e-8), wn.Relu(),
                    wn.GlobalAvgPool(), wn.Dense(1))
    _agrees_with_general_engine(net, inputs((1, 3), 4, 0), inputs((1, 3), 3, 1), calls,
                                rtol=1e-7)


def _agrees_with_general_engine(net, x1, x2, calls, rtol):
    native, reference = net.kernel(x1, x2), general_engine(net, x1, x2)
    assert calls[0] > 0
    for kind in ("nngp", "ntk"):
        torch.testing.assert_close(getattr(native, kind), getattr(reference, kind), rtol=rtol,
                                   atol=0)


def test_two_threads_give_the_same_matrix(calls):
    net = wn.serial(*[wn.Conv2d(8, 3, padding="same", bias_std=0.1), wn.Relu()] * 2,
                    wn.GlobalAvgPool(), wn.Dense(1))
    x = inputs((1, 6, 6), 9, 11)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = net.kernel(x)
        torch.set_num_threads(2)  # pairs split over OpenMP threads: the same arithmetic
        two = net.kernel(x)
    finally:
        torch.set_num_threads(old)
    assert calls[0] > 0
    for kind in ("nngp", "ntk"):
        assert torch.equal(getattr(one, kind), getattr(two, kind))
