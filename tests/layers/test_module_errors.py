"""A built module refuses bad inputs with a ShapeError naming the argument (and the layer)."""

import pickle
import re

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError, ShapeError

MLP = wn.serial(wn.Dense(8), wn.Relu(), wn.Dense(1))
CNN = wn.serial(wn.Conv2d(8, 3), wn.Relu(), wn.GlobalAvgPool(), wn.Dense(1))
FLAT = wn.serial(wn.Conv2d(4, 3), wn.Relu(), wn.Flatten(), wn.Dense(1))


def ones(*shape):
    return torch.ones(*shape, dtype=torch.float64)


@pytest.mark.parametrize("net, in_shape, x, match", [
    # no batch axis
    (MLP, (5,), ones(5), r"`x` must be of shape \(n, \*in_shape\).*got \(5,\)"),
    # wrong number of features / channels: the fan-in the weights were drawn for
    (MLP, (5,), ones(2, 4), r"layer 0 \(Dense\): `input` must have 5 features.*got shape \(2, 4\)"),
    (CNN, (1, 8, 8), ones(2, 3, 8, 8),
     r"layer 0 \(Conv2d\): `input` must have 1 channel on axis 1.*got shape \(2, 3, 8, 8\)"),
    # wrong rank, too small an image: the description's own rule, as in the kernel path
    (CNN, (1, 8, 8), ones(2, 64), r"`x` of shape \(2, 64\).*layer 0 \(Conv2d\).*\(C, H, W\)"),
    (CNN, (1, 8, 8), ones(2, 1, 2, 2), r"`x` of shape \(2, 1, 2, 2\).*layer 0 \(Conv2d\).*window"),
    (CNN, None, ones(2, 64), r"layer 0 \(Conv2d\).*\(C, H, W\)"),  # lazy parameters
    # a later layer: Flatten then Dense sees another number of features
    (FLAT, (1, 8, 8), ones(2, 1, 9, 9), r"layer 3 \(Dense\): `input` must have 144 features"),
])
def test_wrong_input_shape_names_argument_layer_and_shapes(net, in_shape, x, match):
    model = net.module(seed=0, in_shape=in_shape)
    with pytest.raises(ShapeError, match=match):
        model(x)


def test_nested_layers_are_named_down_the_path():
    block = wn.serial(wn.Relu(), wn.Dense(6))
    net = wn.serial(wn.Dense(6), wn.Residual(block), wn.FanOut(2),
                    wn.parallel(wn.Dense(3), wn.Dense(3)), wn.FanInSum())
    model = net.module(seed=0, in_shape=(5,))
    with torch.no_grad():
        model[3][1].weight.set_(torch.ones(3, 7, dtype=torch.float64))  # fan-in 7, not 6
    with pytest.raises(ShapeError, match=r"layer 3 \(Parallel\): layer 1 \(Dense\): .*7 feat"):
        model(ones(2, 5))


def test_single_layer_network_checks_too():
    model = wn.Dense(3).module(seed=0, in_shape=(4,))
    with pytest.raises(ShapeError, match="`x` must be of shape"):
        model(ones(4))
    with pytest.raises(ShapeError, match=r"must have 4 features.*\(2, 5\)"):
        model(ones(2, 5))


def test_check_survives_pickling_and_allows_other_valid_shapes():
    model = pickle.loads(pickle.dumps(CNN.module(seed=0, in_shape=(1, 8, 8))))
    assert model(ones(3, 1, 12, 12)).shape == (3, 1)  # GAP: any image size is valid
    with pytest.raises(ShapeError, match="layer 0"):
        model(ones(3, 1, 2, 2))
    assert model[1:].names == ("Relu", "GlobalAvgPool", "Dense")


@pytest.mark.parametrize("in_shape, match", [
    ((0,), "`in_shape` must be a non-empty sequence of positive ints"),
    ((), "`in_shape` must be a non-empty sequence"),
    (5, "`in_shape` must be .*got 5"),
    ("abc", "`in_shape` must be .*got 'abc'"),
    ((2.5,), "`in_shape` must be"),
])
def test_bad_in_shape(in_shape, match):
    with pytest.raises(ShapeError, match=match):
        MLP.module(seed=0, in_shape=in_shape)


def test_in_shape_that_does_not_fit_names_in_shape_and_the_layer():
    with pytest.raises(ShapeError, match=r"`in_shape` \(64,\) does not fit.*layer 0 \(Conv2d\)"):
        CNN.module(seed=0, in_shape=(64,))
    assert MLP.module(seed=0, in_shape=(np.int64(5),))[0].weight.shape == (8, 5)


@pytest.mark.parametrize("widths", ["wide", 0, -3, 2.5, True, [8, 8], [], [0], [8.0], None])
def test_bad_widths_name_widths(widths):
    if widths is None:  # None keeps the architecture's widths
        assert MLP.module(seed=0, widths=widths)[0].out_channels == 8
        return
    message = ("`widths` must be a positive int or a sequence of 1 positive int (one per "
               f"hidden Dense/Conv layer); got {widths!r}.")
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        MLP.module(seed=0, widths=widths)


def test_good_widths():
    assert MLP.module(seed=0, widths=np.int64(16))[0].out_channels == 16
    assert MLP.module(seed=0, widths=[32])[0].out_channels == 32
