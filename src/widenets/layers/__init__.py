"""Layers: each one is a finite module and an infinite-width kernel rule."""

from widenets.layers.activation import Activation
from widenets.layers.affine import Conv1d, Conv2d, Conv3d, Dense
from widenets.layers.base import Layer
from widenets.layers.combinators import (
    FanInSum,
    FanOut,
    Parallel,
    Residual,
    Serial,
    parallel,
    serial,
)
from widenets.layers.elementwise import Elementwise, Sigmoid, Silu, Softplus, Tanh
from widenets.layers.normalization import LayerNorm
from widenets.layers.polynomial import Monomial, Polynomial, RectifiedMonomial
from widenets.layers.pooling import AvgPool1d, AvgPool2d, AvgPool3d, Flatten, GlobalAvgPool
from widenets.layers.relu import ABRelu, Abs, Identity, LeakyRelu, Relu, Sign
from widenets.layers.smooth import Cos, Erf, Exp, Gaussian, Gelu, Rbf, Sin

__all__ = [
    "ABRelu", "Abs", "Activation", "AvgPool1d", "AvgPool2d", "AvgPool3d", "Conv1d", "Conv2d",
    "Conv3d", "Cos", "Dense", "Elementwise", "Erf", "Exp", "FanInSum", "FanOut", "Flatten",
    "Gaussian", "Gelu", "GlobalAvgPool", "Identity", "Layer", "LayerNorm", "LeakyRelu",
    "Monomial", "Parallel", "Polynomial", "Rbf", "RectifiedMonomial", "Relu", "Residual",
    "Serial", "Sigmoid", "Sign", "Silu", "Sin", "Softplus", "Tanh", "parallel", "serial",
]
