"""widenets: the theory of wide neural networks, computed and checked against finite ones.

One architecture description gives the infinite-width NNGP kernel, the NTK and a finite
``torch.nn.Module`` drawn from the same distribution::

    import widenets as wn
    net = wn.serial(wn.Dense(512, weight_std=1.5, bias_std=0.1), wn.Relu(), wn.Dense(1))
    k = net.kernel(x1, x2)        # k.nngp, k.ntk: (n1, n2) float64
    model = net.module(seed=0)    # finite network
"""

# subpackages; scikit-learn, GPyTorch, Dask, Zarr and matplotlib load only when used
from widenets import data, predict, presets, scale, sklearn, theory
from widenets.errors import WidenetsError, WidenetsWarning
from widenets.finite.empirical import empirical_ntk
from widenets.finite.monte_carlo import monte_carlo_kernel
from widenets.kernels.state import Kernel
from widenets.layers import (
    ABRelu,
    Abs,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    Conv1d,
    Conv2d,
    Conv3d,
    Cos,
    Dense,
    Elementwise,
    Erf,
    Exp,
    FanInSum,
    FanOut,
    Flatten,
    Gaussian,
    Gelu,
    GlobalAvgPool,
    Identity,
    Layer,
    LayerNorm,
    LeakyRelu,
    Monomial,
    Parallel,
    Polynomial,
    Rbf,
    RectifiedMonomial,
    Relu,
    Residual,
    Serial,
    Sigmoid,
    Sign,
    Silu,
    Sin,
    Softplus,
    Tanh,
    parallel,
    serial,
)

__version__ = "0.1.0"

__all__ = [
    "ABRelu", "Abs", "AvgPool1d", "AvgPool2d", "AvgPool3d", "Conv1d", "Conv2d", "Conv3d", "Cos",
    "Dense", "Elementwise", "Erf", "Exp", "FanInSum", "FanOut", "Flatten", "Gaussian", "Gelu",
    "GlobalAvgPool", "Identity", "Kernel", "Layer", "LayerNorm", "LeakyRelu", "Monomial",
    "Parallel", "Polynomial", "Rbf", "RectifiedMonomial", "Relu", "Residual", "Serial",
    "Sigmoid", "Sign", "Silu", "Sin", "Softplus", "Tanh", "WidenetsError", "WidenetsWarning",
    "data", "empirical_ntk", "monte_carlo_kernel", "parallel", "predict", "presets", "scale",
    "serial", "sklearn", "theory",
]
