"""Section 4: convolutional kernels (CNTK-V, CNTK-GAP) against trained CNNs.

Arora et al. 2019 ("On exact computation with an infinitely wide neural net"): the CNTK of a
CNN with global average pooling classifies images far better than the vanilla (Flatten)
CNTK, because GAP keeps the covariances between all pairs of positions (translation
invariance), while Flatten keeps only same-position ones.
"""

from __future__ import annotations

import math
import time

import numpy as np

import widenets as wn
from widenets.data import load
from widenets.finite.training import predict_labels, train_sgd
from widenets.predict import classify_from_kernels
from widenets.report.context import ReportContext, Section, Table
from widenets.report.plotting import pyplot

READOUTS = {"CNTK-V (Flatten)": wn.Flatten, "CNTK-GAP (global average pooling)":
            wn.GlobalAvgPool}


def cnn(readout, width: int, n_classes: int, depth: int = 3) -> wn.Serial:
    layers = []
    for _ in range(depth):
        layers += [wn.Conv2d(width, 3, padding="same", weight_std=2**0.5, bias_std=0.05),
                   wn.Relu()]
    return wn.serial(*layers, readout(), wn.Dense(n_classes, weight_std=1.0, bias_std=0.05))


def _settings(ctx: ReportContext) -> dict:
    downsample = 1 if ctx.data == "digits" else 4  # 8x8 digits; 7x7 MNIST; 8x8 CIFAR
    if ctx.smoke:
        return {"n_train": 40, "n_test": 30, "widths": [8], "seeds": 1, "epochs": 2,
                "downsample": downsample}
    if ctx.quick:
        return {"n_train": 100, "n_test": 100, "widths": [16, 64], "seeds": 1, "epochs": 15,
                "downsample": downsample}
    return {"n_train": 500, "n_test": 500, "widths": [16, 64, 256], "seeds": 2, "epochs": 30,
            "downsample": downsample}


def _kernel_accuracy(ds, net, n_classes):
    start = time.perf_counter()
    k_dd = net.kernel(ds.x_train)
    k_td = net.kernel(ds.x_test, ds.x_train)
    seconds = time.perf_counter() - start
    out = {"seconds": seconds}
    for g in ("nngp", "ntk"):
        pred = classify_from_kernels(getattr(k_dd, g), ds.y_train, getattr(k_td, g),
                                     n_classes=n_classes, get=g, diag_reg=1e-4)
        out[g] = float((pred.labels == ds.y_test).double().mean())
    return out


def _cnn_accuracy(ds, net, width, seed, epochs):
    model = net.module(seed=seed, widths=width, in_shape=tuple(ds.x_train.shape[1:]))
    train_sgd(model, ds.x_train, ds.y_train, epochs=epochs, batch_size=32, learning_rate=1.0,
              seed=seed)
    return float((predict_labels(model, ds.x_test) == ds.y_test).double().mean())


def build(ctx: ReportContext) -> Section:
    s = _settings(ctx)
    ds = load(ctx.data, s["n_train"], s["n_test"], data_dir=ctx.data_dir, seed=ctx.seed,
              downsample=s["downsample"], preprocessing="per-image")
    n_classes = ds.n_classes
    results = {}
    for name, readout in READOUTS.items():
        net = cnn(readout, 64, n_classes)
        base = {**s, "data": ctx.data, "arch": net.to_dict()}
        kernel = ctx.cached("cntk", base, lambda net=net: _kernel_accuracy(ds, net, n_classes))
        finite = {}
        for width in s["widths"]:
            accs = [ctx.cached("cnn-sgd", {**base, "width": width, "seed": seed},
                               lambda net=net, w=width, sd=seed:
                               _cnn_accuracy(ds, net, w, sd, s["epochs"]))
                    for seed in range(s["seeds"])]
            finite[width] = accs
        results[name] = {"kernel": kernel, "finite": finite}
    return _section(ctx, s, ds, results)


def _section(ctx, s, ds, results) -> Section:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 4))
    rows = []
    for i, (name, r) in enumerate(results.items()):
        widths = sorted(r["finite"])
        means = [float(np.mean(r["finite"][w])) for w in widths]
        ses = [float(np.std(r["finite"][w], ddof=1) / math.sqrt(len(r["finite"][w])))
               if len(r["finite"][w]) > 1 else 0.0 for w in widths]
        short = name.split(" ")[0].replace("CNTK", "CNN")
        ax.errorbar(widths, means, yerr=ses, fmt="o-", color=f"C{i}", capsize=3,
                    label=f"finite {short}, SGD")
        ax.axhline(r["kernel"]["ntk"], color=f"C{i}", ls="--", label=f"{name.split(' ')[0]}")
        ax.axhline(r["kernel"]["nngp"], color=f"C{i}", ls=":", label=f"CNN-GP "
                   f"({'GAP' if 'GAP' in name else 'V'})")
        rows += [[name, w, m, e, r["kernel"]["ntk"], r["kernel"]["nngp"]]
                 for w, m, e in zip(widths, means, ses, strict=True)]
    ax.set_xscale("log", base=2)
    ax.set_xlabel("channels per conv layer")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title(f"Convolutional kernels vs CNNs on {ctx.data}")
    ax.legend(fontsize=7)
    figure = ctx.save_figure(fig, "cntk_vs_cnn", "Test accuracy of the infinite CNN (dashed: "
                             "NTK; dotted: NNGP) with Flatten or global-average-pooling "
                             "readout, and of finite CNNs of the same architecture trained by "
                             "SGD (points, standard error over seeds).",
                             ["readout", "width", "cnn_accuracy", "cnn_se", "cntk_accuracy",
                              "cnngp_accuracy"], rows)
    table = Table("Infinite CNNs (3 conv layers, ReLU, critical init)",
                  ["kernel", "NTK accuracy", "NNGP accuracy", "kernel time (s)"],
                  [[name, f"{r['kernel']['ntk']:.3f}", f"{r['kernel']['nngp']:.3f}",
                    f"{r['kernel']['seconds']:.1f}"] for name, r in results.items()])
    v, gap = (results[k]["kernel"] for k in READOUTS)
    shape = "x".join(str(d) for d in ds.x_train.shape[1:])
    return Section(
        key="convolutional", title="4. Convolutional kernels",
        prediction="Global average pooling makes the CNTK depend on all pairs of positions, "
                   "which builds in translation invariance: CNTK-GAP should beat CNTK-V, and "
                   "trained CNNs with the same readouts should approach their kernels as "
                   "channels grow (Arora et al. 2019 report 77.4% vs 66.6% on CIFAR-10).",
        settings={"data": f"{ctx.data}, {s['n_train']} train / {s['n_test']} test, images "
                          f"{shape} (average-pooled by {s['downsample']}), per-image "
                          "standardised",
                  "architecture": "3 x [Conv 3x3 'same', ReLU] (weight_std sqrt 2, bias_std "
                                  "0.05), then Flatten or GAP, then Dense",
                  "finite CNNs": f"channels {s['widths']}, {s['seeds']} seeds, SGD "
                                 f"(cross-entropy, {s['epochs']} epochs, batch 32, lr 1.0)",
                  "kernel regression": "t = inf, diag_reg 1e-4 (relative to the trace)"},
        figures=[figure], tables=[table],
        findings=[f"CNTK-GAP {gap['ntk']:.3f} vs CNTK-V {v['ntk']:.3f} test accuracy; "
                  f"CNN-GP: GAP {gap['nngp']:.3f} vs V {v['nngp']:.3f}",
                  f"kernel matrices: GAP {gap['seconds']:.1f} s vs Flatten {v['seconds']:.1f} "
                  "s (GAP needs every pair of positions)"],
    )
