"""The fused GAP path (kernels/gap.py) against the general engine, layer by layer.

The general engine (every layer over the whole batch of pairs, `window_sum` with padding
copies) is an independent implementation of the same recursion; both are float64 and must
agree to rounding.  The general engine itself is checked against neural-tangents in
tests/layers/test_against_neural_tangents.py.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import widenets as wn
from tests.strategies import ACTIVATIONS, bias_stds, inputs, parameterizations, stds
from widenets.kernels import compute
from widenets.kernels.gap import gap_plan


def general_engine(net, x1, x2=None, **kwargs):
    original = compute.gap_plan
    compute.gap_plan = lambda *args: None
    try:
        return net.kernel(x1, x2, **kwargs)
    finally:
        compute.gap_plan = original


@settings(max_examples=30, deadline=None)
@given(st.data(), st.integers(0, 10**6))
def test_fused_gap_equals_general_engine(data, seed):
    ndim = data.draw(st.integers(1, 2))
    spatial = tuple(data.draw(st.integers(3, 6)) for _ in range(ndim))
    conv = wn.Conv1d if ndim == 1 else wn.Conv2d
    layers = []
    for _ in range(data.draw(st.integers(1, 3))):
        layers.append(conv(data.draw(st.integers(2, 16)), data.draw(st.integers(1, 3)),
                           padding=data.draw(st.sampled_from(["same", "valid"])),
                           weight_std=data.draw(stds), bias_std=data.draw(bias_stds),
                           parameterization=data.draw(parameterizations)))
        if data.draw(st.booleans()):
            layers.append(wn.Dense(data.draw(st.integers(2, 8)), data.draw(stds),
                                   data.draw(bias_stds), data.draw(parameterizations)))
        layers.append(data.draw(st.sampled_from(ACTIVATIONS)))
    layers += [wn.GlobalAvgPool(), wn.Dense(4, data.draw(stds)),
               data.draw(st.sampled_from(ACTIVATIONS)), wn.Dense(1, data.draw(stds))]
    net = wn.serial(*layers)
    channels = data.draw(st.integers(1, 3))
    try:
        net.out_shape((channels, *spatial))
    except wn.WidenetsError:  # 'valid' windows larger than the image
        return
    assert gap_plan(net, (channels, *spatial)) is not None
    n1, n2 = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    x1 = inputs((channels, *spatial), n1, seed)
    x2 = inputs((channels, *spatial), n2, seed + 1)
    for second in (None, x2):
        fused, reference = net.kernel(x1, second), general_engine(net, x1, second)
        for kind in ("nngp", "ntk"):
            # float64 rounding through <= 3 conv layers and two readout layers (summation
            # orders differ: joint shifts here, separable window sums there)
            assert_agree(getattr(fused, kind), getattr(reference, kind), second is None)


def assert_agree(fused, reference, symmetric):
    """Equal to rounding (1e-12 of the largest entry), except the pairs of an input with
    itself, to 1e-8: the general engine reads their variances from a separate sum, which can
    miss the correlation-1 snap by a few rounding errors and then loses sqrt(eps) there
    (seen: 7e-11 relative, one conv layer; the fused path is exact there by construction,
    test_input_paired_with_itself_gets_exact_correlation_one)."""
    scale = reference.abs().max()
    self_pairs = torch.eye(*reference.shape, dtype=torch.bool) if symmetric else \
        torch.zeros(reference.shape, dtype=torch.bool)
    torch.testing.assert_close(fused[~self_pairs], reference[~self_pairs], rtol=1e-12,
                               atol=1e-12 * scale)
    torch.testing.assert_close(fused[self_pairs], reference[self_pairs], rtol=1e-8,
                               atol=1e-8 * scale)


def test_three_dimensional_and_even_windows():
    net = wn.serial(wn.Conv3d(4, 2, padding="same", bias_std=0.3), wn.Erf(),
                    wn.Conv3d(4, (1, 2, 3), padding="same"), wn.Relu(),
                    wn.GlobalAvgPool(), wn.Dense(1))
    x = inputs((2, 3, 4, 4), 3, 0)
    fused, reference = net.kernel(x), general_engine(net, x)
    for kind in ("nngp", "ntk"):
        ref = getattr(reference, kind)
        torch.testing.assert_close(getattr(fused, kind), ref, rtol=1e-12, atol=0)


def test_input_paired_with_itself_gets_exact_correlation_one():
    # each input's variances are read from its own pair, so the same-position entries of a
    # self pair have correlation exactly 1 (theta = 0) as in the general engine
    net = wn.serial(*[wn.Conv2d(8, 3, padding="same") if i % 2 == 0 else wn.Relu()
                      for i in range(8)], wn.GlobalAvgPool(), wn.Dense(1))
    x = inputs((1, 6, 6), 4, 3)
    fused, reference = net.kernel(x), general_engine(net, x)
    torch.testing.assert_close(torch.diagonal(fused.ntk), torch.diagonal(reference.ntk),
                               rtol=1e-14, atol=0)


@pytest.mark.parametrize("layers", [
    [wn.Conv2d(4, 3, stride=2, padding="same"), wn.Relu()],
    [wn.Conv2d(4, 3, padding="circular"), wn.Relu()],
    [wn.Conv2d(4, 3, padding="same"), wn.Relu(), wn.AvgPool2d(2)],
    [wn.Conv2d(4, 3, padding="same"), wn.LayerNorm()],
])
def test_unsupported_layers_use_the_general_engine(layers):
    net = wn.serial(*layers, wn.GlobalAvgPool(), wn.Dense(1))
    assert gap_plan(net, (1, 6, 6)) is None
    assert gap_plan(wn.serial(wn.Conv2d(4), wn.Relu(), wn.Flatten(), wn.Dense(1)),
                    (1, 6, 6)) is None


def test_float32_accumulates_in_float64():
    net = wn.serial(wn.Conv2d(8, 3, padding="same"), wn.Relu(),
                    wn.Conv2d(8, 3, padding="same"), wn.Relu(), wn.GlobalAvgPool(), wn.Dense(1))
    x = inputs((3, 8, 8), 5, 1)
    k64, k32 = net.kernel(x), net.kernel(x.float(), dtype=torch.float32)
    assert k32.ntk.dtype == torch.float32
    for kind in ("nngp", "ntk"):
        ref = getattr(k64, kind)
        # float32 rounding (6e-8) through two layers, means summed in float64
        err = (getattr(k32, kind).double() - ref).abs().max() / ref.abs().max()
        assert err < 1e-6


@pytest.mark.parametrize("cross", [False, True])
def test_blocks_of_rows_give_the_same_matrix(monkeypatch, cross):
    import widenets.kernels.gap as gap

    net = wn.serial(wn.Conv2d(4, 3, padding="same", bias_std=0.2), wn.Relu(),
                    wn.GlobalAvgPool(), wn.Dense(1))
    x1, x2 = inputs((2, 4, 4), 7, 5), (inputs((2, 4, 4), 5, 6) if cross else None)
    whole = net.kernel(x1, x2)
    monkeypatch.setattr(gap, "BLOCK_PAIRS", 3)  # blocks of one row (and some empty ones)
    blocked = net.kernel(x1, x2)
    for kind in ("nngp", "ntk"):
        # the same pairs computed in other chunks: identical up to vectorisation rounding
        torch.testing.assert_close(getattr(blocked, kind), getattr(whole, kind), rtol=1e-14,
                                   atol=0)
