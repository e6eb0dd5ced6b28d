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
from widenets.report.context import ReportContext, Section, Table
from widenets.report.plotting import pyplot
from widenets.report.sections import accuracy


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
    if ctx.smoke:
        widths, n_nets = [16, 64], 3
    x = _inputs(ctx, 8)
    result = ntk_convergence(ctx, net, x, widths, n_nets)
    rows = result["rows"]
    w = np.array([r["width"] for r in rows], dtype=float)
    rms = np.array([r["rms"] for r in rows])
    slope, intercept = np.polyfit(np.log(w), np.log(rms), 1)
    # each RMS over S networks has relative SE ~ 1/sqrt(2S); propagate to the fitted slope
    slope_se = (1 / math.sqrt(2 * n_nets)) / math.sqrt(((np.log(w) - np.log(w).mean()) ** 2).sum())

    plt = pyplot()
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
    acc = accuracy.run(ctx)
    acc_figures, acc_findings, table = _accuracy_figures(ctx, acc)
    s = acc["settings"]
    return Section(
        key="infinite", title="1. Infinite vs finite networks",
        prediction="A wide network trained by gradient descent on the squared loss follows "
                   "the NTK's gradient flow (Lee et al. 2019), so its test outputs approach "
                   "the NTK prediction and its accuracy the NTK's as the width grows; the "
                   "empirical NTK of a network drawn at initialisation converges to the "
                   "analytic NTK, with relative fluctuations shrinking like n^-1/2.",
        settings={"data": f"{ctx.data}, {s['n_train']} train / {s['n_test']} test, "
                          "standardised features",
                  "architecture": "Dense(n)-ReLU-Dense(n)-ReLU-Dense(classes), ntk "
                                  "parameterisation, weight_std sqrt(2), bias_std 0.05",
                  "finite widths": s["widths"], "seeds per width": s["seeds"],
                  "SGD": f"cross-entropy, {s['sgd_epochs']} epochs, batch 64, lr 1.0, "
                         "momentum 0.9, cosine decay",
                  "gradient descent": f"MSE on one-hot targets minus 1/classes, "
                                      f"{s['gd_steps']} full-batch steps, eta = N/lambda_max",
                  "NTK convergence": f"{len(x)} inputs, widths {widths}, {n_nets} networks "
                                     "each (weight_std 1.5, bias_std 0.1)"},
        figures=[*acc_figures, figure],
        tables=[table],
        findings=[*acc_findings,
                  f"fitted slope of the empirical-NTK deviation against width: {slope:.3f} "
                  f"+- {slope_se:.3f} (theory -0.5)",
                  f"RMS relative deviation of the empirical NTK at width {int(w[-1])}: "
                  f"{rms[-1]:.4f}"],
    )


def _accuracy_figures(ctx: ReportContext, acc: dict):
    rows = accuracy.summarise(acc)
    s, inf = acc["settings"], acc["infinite"]
    w = np.array([r["width"] for r in rows], dtype=float)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("sgd", "finite, SGD (cross-entropy)"),
                       ("gd", f"finite, gradient descent (MSE, {s['gd_steps']} steps)")):
        ax.errorbar(w, [r[key] for r in rows], yerr=[r[key + "_se"] for r in rows], fmt="o-",
                    capsize=3, label=label)
    ax.axhline(inf["ntk"], color="C3", ls="--", label="infinite: NTK (t = inf)")
    ax.axhline(inf["nngp"], color="C4", ls=":", label="infinite: NNGP posterior mean")
    ax.axhline(acc["ntk_at_t"], color="C1", ls="-.", lw=1,
               label=f"infinite: NTK gradient flow at t = {s['gd_steps']} steps")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden width n")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title(f"Infinite vs finite networks on {ctx.data}")
    ax.legend(fontsize=8)
    columns = ["width", "sgd_accuracy", "sgd_se", "gd_accuracy", "gd_se",
               "gd_vs_ntk_rms", "gd_vs_ntk_rms_se"]
    data = [[r["width"], r["sgd"], r["sgd_se"], r["gd"], r["gd_se"], r["gd_vs_ntk_rms"],
             r["gd_vs_ntk_rms_se"]] for r in rows]
    f1 = ctx.save_figure(fig, "accuracy_vs_width", "Test accuracy of finite networks against "
                         "width (error bars: standard error over seeds), with the infinite "
                         "networks' accuracies as lines.", columns, data)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    gd_rms = np.array([r["gd_vs_ntk_rms"] for r in rows])
    ax.errorbar(w, gd_rms, yerr=[r["gd_vs_ntk_rms_se"] for r in rows], fmt="o", capsize=3,
                label="finite network trained by GD")
    ax.plot(w, gd_rms[0] * (w / w[0]) ** -0.5, "--", color="gray", label="slope -1/2")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width n")
    ax.set_ylabel("relative RMS distance on test outputs (dimensionless)")
    ax.set_title("Trained networks follow their NTK linearisation")
    ax.legend()
    f2 = ctx.save_figure(fig, "gd_vs_ntk", "Relative RMS distance between the test outputs of a "
                         "network trained by gradient descent and the prediction of the analytic "
                         "NTK for the same network (its own initial function plus the "
                         "gradient flow of the residual, Lee et al. 2019), at the same time.",
                         columns, data)
    slope = float(np.polyfit(np.log(w), np.log(gd_rms), 1)[0]) if len(w) > 1 else float("nan")
    findings = [f"NNGP accuracy {inf['nngp']:.3f}, NTK accuracy {inf['ntk']:.3f}, NTK "
                f"gradient flow at {s['gd_steps']} steps {acc['ntk_at_t']:.3f}",
                f"widest finite network (n = {int(w[-1])}): SGD {rows[-1]['sgd']:.3f}, "
                f"gradient descent {rows[-1]['gd']:.3f}",
                f"relative RMS distance of GD-trained outputs from their NTK linearisation: "
                f"{gd_rms[0]:.3f} at n = {int(w[0])}, {gd_rms[-1]:.3f} at n = {int(w[-1])}; "
                f"log-log slope {slope:.2f} (theory: -1/2 or steeper)"]
    table = Table("Test accuracy (mean over seeds)", ["network", "width", "accuracy"],
                  [["NNGP (Bayesian posterior mean)", "inf", f"{inf['nngp']:.3f}"],
                   ["NTK (gradient flow, t = inf)", "inf", f"{inf['ntk']:.3f}"]]
                  + [[f"finite, {k}", r["width"], f"{r[k]:.3f} +- {r[k + '_se']:.3f}"]
                     for r in rows for k in ("sgd", "gd")])
    return [f1, f2], findings, table
