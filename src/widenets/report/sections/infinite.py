"""Section 1: infinite vs finite networks.

The empirical NTK of networks drawn by ``net.module()`` converges to the analytic NTK, its
fluctuations shrinking like width^-1/2 (Jacot et al. 2018, Thm. 1; the O(1/n) variance of
effective_theory.md §8).
"""

from __future__ import annotations

import math

import numpy as np
import torch

import widenets as wn
from widenets.finite.empirical import empirical_ntk_jacobian
from widenets.report.context import ReportContext, Section


def _inputs(ctx: ReportContext, n: int) -> torch.Tensor:
    from sklearn.datasets import load_digits

    x = torch.as_tensor(load_digits().data[:n], dtype=torch.float64)
    return (x - x.mean(0)) / (x.std(0) + 1e-12)


def ntk_convergence(ctx: ReportContext, net: wn.Layer, x: torch.Tensor, widths, n_nets) -> dict:
    exact = net.kernel(x).ntk
    rows = []
    for width in widths:
        def compute(width=width):
            devs = []
            for seed in range(n_nets):
                model = net.module(seed=seed, widths=width, in_shape=x.shape[1:])
                ntk = empirical_ntk_jacobian(model, x)
                devs.append(float((ntk - exact).norm() / exact.norm()))
            return devs

        settings = {"arch": net.to_dict(), "n": len(x), "width": width, "n_nets": n_nets,
                    "data": ctx.data}
        devs = ctx.cached("ntk-convergence", settings, compute)
        rows.append({"width": width, "rms": math.sqrt(np.mean(np.square(devs))),
                     "se": float(np.std(devs) / math.sqrt(len(devs)) * 1.0),
                     "n": len(devs)})
    return {"rows": rows}


def build(ctx: ReportContext) -> Section:
    net = wn.serial(wn.Dense(512, weight_std=1.5, bias_std=0.1), wn.Relu(),
                    wn.Dense(512, weight_std=1.5, bias_std=0.1), wn.Relu(),
                    wn.Dense(1, weight_std=1.0, bias_std=0.1))
    widths = [64, 256, 1024] if ctx.quick else [64, 128, 256, 512, 1024, 2048]
    n_nets = 6 if ctx.quick else 16
    x = _inputs(ctx, 8)
    result = ntk_convergence(ctx, net, x, widths, n_nets)
    rows = result["rows"]
    w = np.array([r["width"] for r in rows], dtype=float)
    rms = np.array([r["rms"] for r in rows])
    slope, intercept = np.polyfit(np.log(w), np.log(rms), 1)
    # each RMS over S networks has relative SE ~ 1/sqrt(2S); propagate to the fitted slope
    slope_se = (1 / math.sqrt(2 * n_nets)) / math.sqrt(((np.log(w) - np.log(w).mean()) ** 2).sum())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(w, rms, yerr=rms / math.sqrt(2 * n_nets), fmt="o", capsize=3,
                label=f"finite networks ({n_nets} per width)")
    ax.plot(w, np.exp(intercept) * w**slope, "-", label=f"fit: slope {slope:.3f}")
    ax.plot(w, rms[0] * (w / w[0]) ** -0.5, "--", color="gray", label="theory: slope -1/2")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width n")
    ax.set_ylabel(r"RMS $\|\hat\Theta - \Theta\|_F / \|\Theta\|_F$ (dimensionless)")
    ax.set_title("Empirical NTK converges to the analytic NTK")
    ax.legend()
    figure = ctx.save_figure(fig, "ntk_convergence",
                             "Relative deviation of the empirical NTK (torch.func Jacobian "
                             "contraction, w.r.t. all parameters) from the analytic NTK, on "
                             f"{len(x)} digits, against hidden width.",
                             ["width", "rms_relative_deviation", "n_networks"],
                             [[r["width"], r["rms"], r["n"]] for r in rows])
    return Section(
        key="infinite", title="1. Infinite vs finite networks",
        prediction="As the width n grows, a network drawn from the architecture's "
                   "initialisation has an empirical NTK that converges to the analytic NTK, "
                   "with relative fluctuations shrinking like n^-1/2.",
        settings={"architecture": "Dense-ReLU-Dense-ReLU-Dense (ntk parameterisation, "
                                  "weight_std 1.5, bias_std 0.1)",
                  "inputs": f"{len(x)} standardised digits", "widths": widths,
                  "networks per width": n_nets},
        figures=[figure],
        findings=[f"fitted slope of the RMS deviation against width: {slope:.3f} "
                  f"+- {slope_se:.3f} (theory -0.5)",
                  f"RMS relative deviation at width {int(w[-1])}: {rms[-1]:.4f}"],
    )
