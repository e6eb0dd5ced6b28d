"""Infinite networks (NNGP, NTK) against finite ones trained by SGD and gradient descent.

Lee et al. 2019: a wide network trained by gradient descent on the MSE follows the NTK's
gradient flow, ``mu_t = Theta_td Theta_dd^-1 (I - exp(-eta t Theta_dd / N)) y``; its test
accuracy approaches the NTK's as the width grows.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import widenets as wn
from widenets.data import load
from widenets.finite.training import gradient_descent, predict_labels, train_sgd
from widenets.predict import classify_from_kernels, gradient_flow_from_kernels, one_hot
from widenets.report.context import ReportContext


def mlp(width: int, n_classes: int) -> wn.Serial:
    """Two ReLU hidden layers at the critical weight_std sqrt(2); NTK parameterisation."""
    return wn.serial(wn.Dense(width, 2**0.5, 0.05), wn.Relu(), wn.Dense(width, 2**0.5, 0.05),
                     wn.Relu(), wn.Dense(n_classes, 1.0, 0.05))


def settings(ctx: ReportContext) -> dict:
    if ctx.smoke:
        return {"data": ctx.data, "n_train": 60, "n_test": 40, "widths": [16, 64], "seeds": 2,
                "sgd_epochs": 2, "gd_steps": 10}
    quick = ctx.quick
    return {"data": ctx.data, "n_train": 200 if quick else 500, "n_test": 200 if quick else 400,
            "widths": [64, 512] if quick else [64, 256, 1024], "seeds": 1 if quick else 2,
            "sgd_epochs": 10 if quick else 20, "gd_steps": 100 if quick else 300}


def infinite_accuracy(ds, net, n_classes: int) -> dict:
    k = {g: (getattr(net.kernel(ds.x_train, get=g), g),
             getattr(net.kernel(ds.x_test, ds.x_train, get=g), g)) for g in ("nngp", "ntk")}
    out = {}
    for g, (k_dd, k_td) in k.items():
        pred = classify_from_kernels(k_dd, ds.y_train, k_td, n_classes=n_classes, get=g,
                                     diag_reg=1e-6)
        out[g] = float((pred.labels == ds.y_test).double().mean())
    return out


def gd_learning_rate(k_dd: torch.Tensor, n_outputs: int) -> float:
    """``eta = N / lambda_max``: the largest mode relaxes at rate 1 per step (stable < 2)."""
    return len(k_dd) * n_outputs / float(torch.linalg.eigvalsh(k_dd)[-1])


def finite_accuracy(ds, net, n_classes: int, width: int, seed: int, s: dict) -> dict:
    in_shape = tuple(ds.x_train.shape[1:])
    model = net.module(seed=seed, widths=width, in_shape=in_shape)
    train_sgd(model, ds.x_train, ds.y_train, epochs=s["sgd_epochs"], batch_size=64,
              learning_rate=1.0, seed=seed)
    sgd = float((predict_labels(model, ds.x_test) == ds.y_test).double().mean())
    k_dd = net.kernel(ds.x_train, get="ntk").ntk
    eta = gd_learning_rate(k_dd, n_classes)
    targets = one_hot(ds.y_train, n_classes)
    run = gradient_descent(net.module(seed=seed, widths=width, in_shape=in_shape), ds.x_train,
                           targets, learning_rate=eta, steps=s["gd_steps"], x_test=ds.x_test,
                           record=[0, s["gd_steps"]])
    gd_labels = run.test_outputs[0, -1].argmax(-1)
    # the same network linearised around its own initial function, with the analytic NTK:
    # f_t = f_0 + Theta_td Theta_dd^-1 (I - exp(-eta t Theta_dd / N)) (y - f_0)  (Lee et al.)
    k_td = net.kernel(ds.x_test, ds.x_train, get="ntk").ntk
    f0_train, f0_test = run.train_outputs[0, 0], run.test_outputs[0, 0]
    linear = gradient_flow_from_kernels(k_dd, targets - f0_train, k_td, t=[float(s["gd_steps"])],
                                        get="ntk", learning_rate=eta, compute_cov=False)
    predicted = f0_test + linear.mean[0]
    distance = (run.test_outputs[0, -1] - predicted).pow(2).mean().sqrt()
    return {"sgd": sgd, "gd": float((gd_labels == ds.y_test).double().mean()),
            "gd_vs_ntk_rms": float(distance / predicted.pow(2).mean().sqrt()), "eta": eta}


def ntk_at_time(ds, net, n_classes: int, eta: float, steps: int) -> tuple[float, torch.Tensor]:
    """Accuracy and mean outputs of the NTK's gradient flow after ``steps`` GD steps."""
    k_dd = net.kernel(ds.x_train, get="ntk").ntk
    k_td = net.kernel(ds.x_test, ds.x_train, get="ntk").ntk
    pred = gradient_flow_from_kernels(k_dd, one_hot(ds.y_train, n_classes), k_td,
                                      t=[float(steps)], get="ntk", learning_rate=eta,
                                      compute_cov=False)
    mean = pred.mean[0]
    return float((mean.argmax(-1) == ds.y_test).double().mean()), mean


def run(ctx: ReportContext) -> dict:
    s = settings(ctx)
    ds = load(ctx.data, s["n_train"], s["n_test"], data_dir=ctx.data_dir, flatten=True,
              seed=ctx.seed)
    n_classes = ds.n_classes
    net = mlp(512, n_classes)
    infinite = ctx.cached("accuracy-infinite", {**s, "arch": net.to_dict()},
                          lambda: infinite_accuracy(ds, net, n_classes))
    rows = []
    for width in s["widths"]:
        for seed in range(s["seeds"]):
            r = ctx.cached("accuracy-finite", {**s, "width": width, "seed": seed},
                           lambda w=width, sd=seed: finite_accuracy(ds, net, n_classes, w, sd, s))
            rows.append({"width": width, "seed": seed, **r})
    ntk_t_acc, _ = ntk_at_time(ds, net, n_classes, rows[0]["eta"], s["gd_steps"])
    return {"settings": s, "infinite": infinite, "ntk_at_t": ntk_t_acc, "finite": rows,
            "n_classes": n_classes}


def summarise(result: dict) -> list[dict]:
    """Mean and standard error over seeds for each width."""
    out = []
    widths = sorted({r["width"] for r in result["finite"]})
    for w in widths:
        rs = [r for r in result["finite"] if r["width"] == w]
        row = {"width": w}
        for key in ("sgd", "gd", "gd_vs_ntk_rms"):
            v = np.array([r[key] for r in rs])
            row[key] = float(v.mean())
            row[key + "_se"] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
        out.append(row)
    return out
