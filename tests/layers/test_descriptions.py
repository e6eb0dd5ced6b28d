"""Layers are frozen dataclasses: printable, picklable, dict/JSON round trips, width overrides."""

import dataclasses
import json
import pickle

import pytest
import torch

import widenets as wn


def _net():
    return wn.serial(
        wn.Conv2d(8, 3, padding="same", weight_std=1.4, bias_std=0.1),
        wn.LayerNorm(axis=(1, 2, 3)),
        wn.Residual(wn.serial(wn.Relu(), wn.Conv2d(8, (3, 1), padding="circular")), alpha=0.5),
        wn.Tanh(degree=32),
        wn.AvgPool2d(2),
        wn.FanOut(2),
        wn.parallel(wn.serial(wn.Gelu(), wn.Conv2d(8, 1)), wn.Identity()),
        wn.FanInSum(),
        wn.Elementwise(torch.nn.functional.softplus, degree=16),
        wn.GlobalAvgPool(),
        wn.Dense(16, 1.2, 0.1, parameterization="standard"),
        wn.Polynomial([0.0, 1.0, 0.5]),
        wn.Dense(3),
    )


def test_round_trip_through_dict_json_and_pickle():
    net = _net()
    assert wn.Layer.from_dict(net.to_dict()) == net
    assert wn.Layer.from_dict(json.loads(net.to_json())) == net
    assert pickle.loads(pickle.dumps(net)) == net


def test_frozen_and_printable():
    net = _net()
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.layers = ()
    text = repr(net)
    assert text.startswith("serial(")
    assert "Conv2d(out_channels=8" in text and "Tanh(degree=32)" in text


def test_lambda_cannot_be_serialised():
    with pytest.raises(wn.WidenetsError, match="lambda"):
        wn.Elementwise(lambda x: x * 2).to_dict()


def test_unknown_type_is_refused():
    with pytest.raises(wn.WidenetsError, match="type"):
        wn.Layer.from_dict({"type": "Dropout"})


def test_with_widths_replaces_hidden_widths_only():
    net = _net()
    assert [w.out_channels if hasattr(w, "out_channels") else w.out_features
            for w in net.width_layers()] == [8, 8, 8, 16, 3]
    wide = net.with_widths(64)
    assert [getattr(w, w.width_field) for w in wide.width_layers()] == [64, 64, 64, 64, 3]
    custom = net.with_widths([4, 5, 6, 7])
    assert [getattr(w, w.width_field) for w in custom.width_layers()] == [4, 5, 6, 7, 3]
    with pytest.raises(wn.WidenetsError, match="widths"):
        net.with_widths([1, 2])
