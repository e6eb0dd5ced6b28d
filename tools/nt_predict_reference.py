"""Reference predictions from neural-tangents 0.6.5 (run in its own environment).

    JAX_PLATFORMS=cpu ../ntref/bin/python tools/nt_predict_reference.py \
        tests/fixtures/nt_predictions.json

neural-tangents is never a dependency of widenets.  This script draws inputs and targets,
computes nt's kernels and its ``predict.gradient_descent_mse_ensemble`` (finite times and
``t=None`` = infinity, test inputs and ``x_test=None``, with and without ``diag_reg``,
relative and absolute) and ``predict.gp_inference`` (observation noise as an absolute
``diag_reg``; "nngp" and "ntkgp", a GP with the NTK as covariance), and stores all of it with
the inputs.  Architectures use the neutral format of ``tools/nt_reference.py``.
"""

import json
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

CASES = [
    ("relu", [["Dense", {"out_features": 64, "weight_std": 1.4, "bias_std": 0.1}], ["Relu", {}],
              ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
    ("erf", [["Dense", {"out_features": 64, "weight_std": 1.2, "bias_std": 0.3}], ["Erf", {}],
             ["Dense", {"out_features": 64, "weight_std": 1.1, "bias_std": 0.2}], ["Erf", {}],
             ["Dense", {"out_features": 1, "weight_std": 1.0, "bias_std": 0.1}]]),
]
TIMES = [0.0, 0.5, 4.0, 40.0, 400.0]
LEARNING_RATE = 0.7
REGS = [(0.0, False), (1e-2, False), (0.05, True)]
NOISES = [1e-3, 0.1]


def nt_layer(name, kw):
    if name == "Dense":
        return stax.Dense(kw["out_features"], kw["weight_std"], kw.get("bias_std"))
    return {"Relu": stax.Relu, "Erf": stax.Erf}[name]()


def tolist(a):
    return np.asarray(a, dtype=np.float64).tolist()


def flow_entries(kernel_fn, x_train, y_train, x_test):
    out = []
    for diag_reg, absolute in REGS:
        predict = nt.predict.gradient_descent_mse_ensemble(
            kernel_fn, x_train, y_train, learning_rate=LEARNING_RATE, diag_reg=diag_reg,
            diag_reg_absolute_scale=absolute)
        for get in ("nngp", "ntk"):
            for on, xt in (("test", x_test), ("train", None)):
                finite = predict(t=np.array(TIMES), x_test=xt, get=get, compute_cov=True)
                inf = predict(t=None, x_test=xt, get=get, compute_cov=True)
                out.append({"get": get, "diag_reg": diag_reg, "absolute": absolute, "on": on,
                            "mean": tolist(finite.mean), "cov": tolist(finite.covariance),
                            "mean_inf": tolist(inf.mean), "cov_inf": tolist(inf.covariance)})
    return out


def gp_entries(k_dd, k_td, k_tt, y_train):
    out = []
    for noise in NOISES:
        predict = nt.predict.gp_inference(k_dd, y_train, diag_reg=noise,
                                          diag_reg_absolute_scale=True)
        for get in ("nngp", "ntkgp"):
            res = predict(get=get, k_test_train=k_td, k_test_test=k_tt)
            out.append({"get": "nngp" if get == "nngp" else "ntk", "noise": noise,
                        "mean": tolist(res.mean), "cov": tolist(res.covariance)})
    return out


def main(path):
    rng = np.random.default_rng(20240611)
    cases = []
    for name, arch in CASES:
        x_train = rng.standard_normal((16, 4))
        x_test = rng.standard_normal((6, 4))
        y_train = rng.standard_normal((16, 3))
        _, _, kernel_fn = stax.serial(*[nt_layer(n, k) for n, k in arch])
        k_dd = kernel_fn(x_train, None, ("nngp", "ntk"))
        k_td = kernel_fn(x_test, x_train, ("nngp", "ntk"))
        k_tt = kernel_fn(x_test, None, ("nngp", "ntk"))
        cases.append({
            "name": name, "arch": arch, "x_train": tolist(x_train), "x_test": tolist(x_test),
            "y_train": tolist(y_train), "learning_rate": LEARNING_RATE, "t": TIMES,
            "kernels": {f"{g}_{part}": tolist(getattr(k, g)) for g in ("nngp", "ntk")
                        for part, k in (("dd", k_dd), ("td", k_td), ("tt", k_tt))},
            "flow": flow_entries(kernel_fn, x_train, y_train, x_test),
            "gp": gp_entries(k_dd, k_td, k_tt, y_train),
        })
    meta = {"neural_tangents": nt.__version__, "jax": jax.__version__,
            "command": "JAX_PLATFORMS=cpu ../ntref/bin/python tools/nt_predict_reference.py "
                       "tests/fixtures/nt_predictions.json"}
    with open(path, "w") as f:
        json.dump({"meta": meta, "cases": cases}, f)


if __name__ == "__main__":
    main(sys.argv[1])
