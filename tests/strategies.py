"""Hypothesis strategies: small random architectures and inputs for property tests."""

import torch
from hypothesis import strategies as st

import widenets as wn

ACTIVATIONS = [wn.Relu(), wn.Erf(), wn.Gelu(), wn.LeakyRelu(0.1), wn.Abs(), wn.Sin(),
               wn.ABRelu(-0.5, 1.2), wn.RectifiedMonomial(2), wn.Identity(), wn.Cos()]

stds = st.floats(0.3, 2.0)
bias_stds = st.one_of(st.none(), st.floats(0.0, 0.5))
parameterizations = st.sampled_from(["ntk", "standard"])


@st.composite
def mlps(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        layers += [wn.Dense(draw(st.integers(2, 64)), draw(stds), draw(bias_stds),
                            draw(parameterizations)),
                   draw(st.sampled_from(ACTIVATIONS))]
    layers.append(wn.Dense(1, draw(stds), draw(bias_stds), draw(parameterizations)))
    return wn.serial(*layers), (draw(st.integers(1, 6)),)


@st.composite
def cnns(draw):
    ndim = draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(3, 5)) for _ in range(ndim))
    conv = wn.Conv1d if ndim == 1 else wn.Conv2d
    layers = []
    for _ in range(draw(st.integers(1, 2))):
        layers += [conv(draw(st.integers(2, 32)), draw(st.integers(1, 3)),
                        stride=draw(st.integers(1, 2)),
                        padding=draw(st.sampled_from(["same", "circular"])),
                        weight_std=draw(stds), bias_std=draw(bias_stds),
                        parameterization=draw(parameterizations)),
                   draw(st.sampled_from(ACTIVATIONS))]
    readout = draw(st.sampled_from([wn.Flatten(), wn.GlobalAvgPool()]))
    layers += [readout, wn.Dense(1, draw(stds), draw(bias_stds))]
    return wn.serial(*layers), (draw(st.integers(1, 3)), *spatial)


architectures = st.one_of(mlps(), cnns())


def inputs(shape, n, seed):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)
