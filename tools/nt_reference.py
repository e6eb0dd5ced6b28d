"""Generate reference kernels with neural-tangents 0.6.5 (run in a separate environment).

    JAX_PLATFORMS=cpu ../ntref/bin/python tools/nt_reference.py tests/data/nt_reference.json

neural-tangents is never a dependency of widenets: this script is how the reference numbers
in ``tests/data/nt_reference.json`` were produced, with inputs drawn here and stored beside
them.  Architectures are written in a small neutral format (a list of [name, kwargs]) that the
test builds with widenets and this script builds with ``neural_tangents.stax``.  Images are
stored NCHW; neural-tangents gets them transposed to NHWC.
"""

import json
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
from neural_tangents import stax  # noqa: E402

CASES = [
    ("mlp_relu", (6, 5), [["Dense", {"out_features": 64, "weight_std": 1.4, "bias_std": 0.1}],
                          ["Relu", {}], ["Dense", {"out_features": 1, "weight_std": 1.0,
                                                   "bias_std": 0.1}]]),
    ("mlp_standard", (5, 7), [["Dense", {"out_features": 32, "weight_std": 1.3, "bias_std": 0.2,
                                         "parameterization": "standard"}],
                              ["Erf", {"a": 1.2, "b": 0.7, "c": 0.1}],
                              ["Dense", {"out_features": 16, "weight_std": 1.1, "bias_std": 0.3,
                                         "parameterization": "standard"}],
                              ["Relu", {}],
                              ["Dense", {"out_features": 1, "weight_std": 0.9, "bias_std": 0.1,
                                         "parameterization": "standard"}]]),
    ("mlp_mix", (5, 4), [["Dense", {"out_features": 8, "weight_std": 1.2, "bias_std": 0.05}],
                         ["Gelu", {}], ["Dense", {"out_features": 8, "weight_std": 1.1}],
                         ["Sin", {"a": 0.8, "b": 1.3, "c": 0.4}],
                         ["Dense", {"out_features": 8, "weight_std": 1.0, "bias_std": 0.2}],
                         ["LeakyRelu", {"alpha": 0.2}],
                         ["Dense", {"out_features": 8, "weight_std": 1.0}],
                         ["ABRelu", {"a": -0.3, "b": 0.9}],
                         ["Dense", {"out_features": 8, "weight_std": 1.0}],
                         ["Abs", {}],
                         ["Dense", {"out_features": 8, "weight_std": 0.7, "bias_std": 0.1}],
                         ["Exp", {"a": 0.6, "b": 0.5}],
                         ["Dense", {"out_features": 8, "weight_std": 0.5}],
                         ["Gaussian", {"a": 1.1, "b": -0.7}],
                         ["Dense", {"out_features": 8, "weight_std": 1.0, "bias_std": 0.3}],
                         ["Rbf", {"gamma": 0.6}],
                         ["Dense", {"out_features": 8, "weight_std": 1.0, "bias_std": 0.1}],
                         ["Cos", {"a": 1.0, "b": 0.9, "c": 0.2}],
                         ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
    ("mlp_poly", (4, 3), [["Dense", {"out_features": 8, "weight_std": 0.9, "bias_std": 0.1}],
                          ["Monomial", {"degree": 3}],
                          ["Dense", {"out_features": 8, "weight_std": 0.8, "bias_std": 0.1}],
                          ["Polynomial", {"coefficients": [0.1, -0.5, 0.3, 0.2]}],
                          ["Dense", {"out_features": 8, "weight_std": 1.0, "bias_std": 0.1}],
                          ["Sign", {}],
                          ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
    # nt's RectifiedMonomial is NaN for identical inputs (theta = 0), which would poison the
    # variances of every later layer, so it comes last here and NaN entries are not compared.
    ("mlp_rectified_monomial", (4, 3), [
        ["Dense", {"out_features": 8, "weight_std": 0.9, "bias_std": 0.1}],
        ["RectifiedMonomial", {"degree": 3}],
        ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
    ("cnn_flatten", (4, 2, 6, 5), [
        ["Conv2d", {"out_channels": 16, "kernel_size": [3, 2], "padding": "same",
                    "weight_std": 1.4, "bias_std": 0.1}],
        ["Relu", {}],
        ["Conv2d", {"out_channels": 16, "kernel_size": 3, "stride": 2, "padding": "valid",
                    "weight_std": 1.3, "bias_std": 0.2}],
        ["Erf", {}],
        ["Flatten", {}],
        ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
    ("cnn_gap", (3, 3, 5, 6), [
        ["Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": "same", "weight_std": 1.4,
                    "bias_std": 0.1}],
        ["Relu", {}],
        ["Conv2d", {"out_channels": 16, "kernel_size": 3, "stride": 2, "padding": "same",
                    "weight_std": 1.4, "bias_std": 0.1}],
        ["Relu", {}],
        ["AvgPool2d", {"kernel_size": 2, "stride": 1, "padding": "same"}],
        ["Conv2d", {"out_channels": 16, "kernel_size": 2, "padding": "circular",
                    "weight_std": 1.2, "bias_std": 0.3}],
        ["Gelu", {}],
        ["GlobalAvgPool", {}],
        ["Dense", {"out_features": 8, "weight_std": 1.0, "bias_std": 0.1}],
        ["Relu", {}],
        ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
    ("cnn_standard_gap", (3, 2, 5, 5), [
        ["Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same", "weight_std": 1.4,
                    "bias_std": 0.1, "parameterization": "standard"}],
        ["Relu", {}],
        ["GlobalAvgPool", {}],
        ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1,
                   "parameterization": "standard"}]]),
    ("conv1d_layernorm", (4, 3, 7), [
        ["Conv1d", {"out_channels": 8, "kernel_size": 3, "padding": "same", "weight_std": 1.3,
                    "bias_std": 0.2}],
        ["LayerNorm", {"axis": 1}],
        ["Relu", {}],
        ["Conv1d", {"out_channels": 8, "kernel_size": 2, "stride": 2, "padding": "valid",
                    "weight_std": 1.3, "bias_std": 0.2}],
        ["LayerNorm", {"axis": [1, 2]}],
        ["Tanh", {}],
        ["AvgPool1d", {"kernel_size": 2}],
        ["Flatten", {}],
        ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.0}]]),
    ("resnet", (4, 6), [
        ["Dense", {"out_features": 8, "weight_std": 1.0, "bias_std": 0.1}],
        ["Residual", {"block": [["Relu", {}], ["Dense", {"out_features": 8, "weight_std": 1.2,
                                                          "bias_std": 0.1}]], "alpha": 0.5}],
        ["FanOut", {"n": 2}],
        ["Parallel", {"layers": [[["Relu", {}], ["Dense", {"out_features": 8,
                                                          "weight_std": 1.3}]],
                                 [["Identity", {}]]]}],
        ["FanInSum", {}],
        ["Erf", {}],
        ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
    ("conv3d", (3, 2, 3, 4, 3), [
        ["Conv3d", {"out_channels": 8, "kernel_size": 2, "padding": "same", "weight_std": 1.3,
                    "bias_std": 0.2}],
        ["Relu", {}],
        ["GlobalAvgPool", {}],
        ["Dense", {"out_features": 1, "weight_std": 1.0}]]),
]


def _nt_layer(name, kw):
    kw = dict(kw)
    pad = {"same": "SAME", "valid": "VALID", "circular": "CIRCULAR"}
    if name == "Dense":
        return stax.Dense(kw["out_features"], kw["weight_std"], kw.get("bias_std"),
                          parameterization=kw.get("parameterization", "ntk"))
    if name.startswith("Conv"):
        nd = int(name[4])
        ks = kw["kernel_size"]
        ks = (ks,) * nd if isinstance(ks, int) else tuple(ks)
        st = kw.get("stride", 1)
        st = (st,) * nd if isinstance(st, int) else tuple(st)
        spec = {1: "NWC", 2: "NHWC", 3: "NDHWC"}[nd]
        return stax.Conv(kw["out_channels"], ks, st, pad[kw.get("padding", "valid")],
                         kw["weight_std"], kw.get("bias_std"),
                         dimension_numbers=(spec, spec[1:-1] + "IO", spec),
                         parameterization=kw.get("parameterization", "ntk"))
    if name.startswith("AvgPool"):
        nd = int(name[7])
        ks = kw["kernel_size"]
        ks = (ks,) * nd if isinstance(ks, int) else tuple(ks)
        st = kw.get("stride") or ks
        st = (st,) * nd if isinstance(st, int) else tuple(st)
        return stax.AvgPool(ks, st, pad[kw.get("padding", "valid")])
    if name == "LayerNorm":
        axis = kw.get("axis", 1)
        axis = [axis] if isinstance(axis, int) else list(axis)
        return stax.LayerNorm(axis=tuple(_nhwc_axis(a) for a in axis))
    if name == "Residual":
        # x + alpha f(x) with f ending in Dense(W, b) is x + Dense(alpha W, alpha b)(...)
        *head, (last, last_kw) = kw["block"]
        alpha = kw.get("alpha", 1.0)
        last_kw = dict(last_kw, weight_std=alpha * last_kw["weight_std"],
                       bias_std=None if last_kw.get("bias_std") is None
                       else alpha * last_kw["bias_std"])
        block = stax.serial(*[_nt_layer(n, k) for n, k in [*head, (last, last_kw)]])
        return stax.serial(stax.FanOut(2), stax.parallel(stax.Identity(), block),
                           stax.FanInSum())
    if name == "Parallel":
        return stax.parallel(*[stax.serial(*[_nt_layer(n, k) for n, k in branch])
                               for branch in kw["layers"]])
    if name == "FanOut":
        return stax.FanOut(kw["n"])
    if name == "Tanh":
        return stax.ElementwiseNumerical(jax.numpy.tanh, deg=64)
    if name == "Polynomial":
        return stax.Polynomial(kw["coefficients"])
    simple = {"Relu": stax.Relu, "Gelu": stax.Gelu, "Abs": stax.Abs, "Sign": stax.Sign,
              "Identity": stax.Identity, "Flatten": stax.Flatten,
              "GlobalAvgPool": stax.GlobalAvgPool, "FanInSum": stax.FanInSum}
    if name in simple:
        return simple[name]()
    return getattr(stax, name)(**kw)


_RANK = {}


def _nhwc_axis(a):
    rank = _RANK["rank"]
    a = a % rank
    if a == 0:
        return 0
    if a == 1:
        return rank - 1
    return a - 1


def main(path):
    rng = np.random.RandomState(0)
    out = []
    for name, shape, arch in CASES:
        _RANK["rank"] = len(shape)
        x1 = rng.randn(*shape)
        x2 = rng.randn(shape[0] - 1, *shape[1:])
        x1[1] = 0.0  # a zero input must not produce NaN
        _, _, kernel_fn = stax.serial(*[_nt_layer(n, k) for n, k in arch])
        to_nt = (lambda x: np.moveaxis(x, 1, -1)) if len(shape) > 2 else (lambda x: x)
        k11 = kernel_fn(to_nt(x1), None, ("nngp", "ntk"))
        k12 = kernel_fn(to_nt(x1), to_nt(x2), ("nngp", "ntk"))
        out.append({"name": name, "arch": arch, "x1": x1.tolist(), "x2": x2.tolist(),
                    "nngp11": np.asarray(k11.nngp).tolist(), "ntk11": np.asarray(k11.ntk).tolist(),
                    "nngp12": np.asarray(k12.nngp).tolist(), "ntk12": np.asarray(k12.ntk).tolist()})
        print(name, np.asarray(k12.nngp).ravel()[:3])
    with open(path, "w") as f:
        json.dump({"generator": "neural-tangents 0.6.5, jax 0.4.23, float64", "cases": out}, f)


if __name__ == "__main__":
    main(sys.argv[1])
