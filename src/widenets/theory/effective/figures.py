"""Figures of the finite-width theory, each with the data behind it (matplotlib, lazily).

Every function returns ``(figure, data)``: a :class:`matplotlib.figure.Figure` (created
without pyplot, so no backend or global state is touched) and a dict with ``"columns"`` and
``"rows"`` (CSV-ready lists of numbers) plus the settings used.  Monte Carlo points carry
standard errors from the jackknife over networks (:mod:`.estimators`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from widenets.theory.effective import estimators, montecarlo
from widenets.theory.effective.critical import criticality
from widenets.theory.effective.phase import phase_diagram
from widenets.theory.effective.theory import effective

DEFAULT_ACTIVATIONS = ("relu", "linear", "tanh", "gelu")


def _critical_theory(name: str, depth: int, width: int, ntk_lambdas: bool = False):
    """A critical network of ``name`` and an input giving ``K^{(1)} = K*`` (or 1);
    ``ntk_lambdas``: learning rates ``lambda = C`` (the NTK of ``net.module()``)."""
    from widenets.theory.effective.activations import from_name

    act = from_name(name)
    c = criticality(act)
    lam = {"lambda_b": c.bias_var, "lambda_W": c.weight_var} if ntk_lambdas else {}
    theory = effective(act, depth=depth, widths=width, bias_var=c.bias_var,
                       weight_var=c.weight_var, **lam)
    k1 = c.fixed_point if c.fixed_point else 1.0  # start GELU/SWISH at K*, others at 1
    x = torch.full((1, 4), math.sqrt((k1 - c.bias_var) / c.weight_var), dtype=torch.float64)
    return theory, x


def vertex_vs_aspect_ratio(activations=DEFAULT_ACTIVATIONS, widths=(32, 128, 512),
                           depths=(2, 4, 8, 12, 16), n_networks: int = 4000, seed: int = 0):
    """``Var(G)/E[G]^2 = V/(n K^2)`` of the output against ``L/n`` at criticality.

    Monte Carlo: the stochastic-metric sampler (exact in law, effective_theory.md §4.1).
    Theory lines: the O(1/n) recursion ``V^{(L)}/(n K^2)`` for each width; for ReLU also the
    exact ``(1 + 5/n)^{L-1} - 1`` (§5), showing where the 1/n expansion bends away.
    """
    import warnings

    import matplotlib.ticker
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for color, name in zip(("C0", "C1", "C2", "C3", "C4", "C5"), activations, strict=False):
        for n in widths:
            th_lines = []
            for depth in depths:
                theory, x = _critical_theory(name, depth, n)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # large L/n is the point of the figure
                    stats = theory.four_point(x)
                pred = float(stats.V[-1].reshape(()) / (n * stats.K[-1, 0, 0] ** 2))
                batch = montecarlo.stochastic_metric(theory, x, n_networks, gen)
                g = batch.metric[:, 0, 0]
                value, se = estimators.jackknife({"g": g, "g2": g * g},
                                                 lambda m: m["g2"] / m["g"] ** 2 - 1)
                rows.append([name, n, depth, depth / n, float(value), float(se), pred])
                th_lines.append((depth / n, pred))
            marker = {32: "o", 128: "s", 512: "^"}.get(n, "D")
            pts = [r for r in rows if r[0] == name and r[1] == n]
            ax.errorbar([r[3] for r in pts], [r[4] for r in pts], yerr=[r[5] for r in pts],
                        fmt=marker, color=color, ms=4, capsize=2, alpha=0.8,
                        label=f"{name} MC" if n == widths[0] else None)
            ax.plot(*zip(*th_lines, strict=True), "-", color=color, lw=1,
                    label=f"{name} O(1/n) theory" if n == widths[0] else None)
            if name == "relu":  # exact at any width (effective_theory.md §5)
                exact = [(d / n, (1 + 5 / n) ** (d - 1) - 1) for d in depths]
                ax.plot(*zip(*exact, strict=True), ":", color="k", lw=1,
                        label=r"relu exact $(1+5/n)^{L-1}-1$" if n == widths[0] else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ratios = [d / n for n in widths for d in depths]
    ticks = [t for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
             if min(ratios) <= t <= max(ratios)]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded labels
    ax.set_xlabel("aspect ratio L/n (depth / width, dimensionless)")
    ax.set_ylabel(r"$V/(nK^2) = \mathrm{Var}(\hat G)/E[\hat G]^2$ (dimensionless)")
    ax.set_title("Finite-width fluctuations grow with L/n (one line per width; markers "
                 "o, s, ^ for n = " + ", ".join(map(str, widths)) + ")", fontsize=9)
    ax.legend(fontsize=8)
    columns = ["activation", "width", "depth", "aspect_ratio", "mc", "mc_se", "theory"]
    return fig, {"columns": columns, "rows": rows, "n_networks": n_networks, "seed": seed}


def ntk_variance_vs_width(activations=("tanh", "relu"), depth: int = 4,
                          widths=(16, 32, 64, 128, 256), n_networks: int = 400, seed: int = 0):
    """``Var(H_ii)/H^2 = (A + 2B)/(n H^2)`` against width: networks built by ``net.module()``
    (NTK by backpropagation, checked against torch.func), theory line from the recursions.
    Critical initialisation with ``lambda = C`` (the NTK of widenets' NTK parameterisation)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    rows = []
    for color, name in zip(("C0", "C1", "C2", "C3"), activations, strict=False):
        theory_line = []
        for n in widths:
            theory, x = _critical_theory(name, depth, n, ntk_lambdas=True)
            net = theory.network(out_features=16)
            batches = []
            for chunk in montecarlo.chunks(n_networks, depth * n * n):
                nets = montecarlo.from_modules([net.module(seed=seed + 10**6 * n + s,
                                                           in_shape=(x.shape[1],))
                                                for s in chunk])
                batches.append(montecarlo.forward(theory, nets, x, ntk=True))
            h = torch.cat([b.ntk[:, range(16), range(16), 0, 0] for b in batches])  # (S, 16)
            value, se = estimators.jackknife({"h": h.mean(1), "h2": (h * h).mean(1)},
                                             lambda m: m["h2"] / m["h"] ** 2 - 1)
            pred = float(theory.ntk_fluctuations(x).ntk_relative_variance()[0])
            rows.append([name, n, depth, float(value), float(se), pred])
            theory_line.append((n, pred))
        pts = [r for r in rows if r[0] == name]
        ax.errorbar([r[1] for r in pts], [r[3] for r in pts], yerr=[r[4] for r in pts],
                    fmt="o", color=color, capsize=3, label=f"{name}: finite networks")
        ax.plot(*zip(*theory_line, strict=True), "-", color=color,
                label=f"{name}: (A+2B)/(n H²)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width n")
    ax.set_ylabel(r"relative NTK variance $\mathrm{Var}(\hat H_{ii})/H^2$ (dimensionless)")
    ax.set_title(f"NTK fluctuations shrink like 1/n (depth {depth}, critical)")
    ax.legend(fontsize=8)
    columns = ["activation", "width", "depth", "mc", "mc_se", "theory"]
    return fig, {"columns": columns, "rows": rows, "n_networks": n_networks, "seed": seed}


def phase_diagram_figure(activation="tanh", bias_vars=None, weight_vars=None, *,
                         grid: int = 41, bias_max: float = 1.0, input_var: float = 1.0):
    """``chi_par`` and ``chi_perp`` at the fixed point over the ``(C_b, C_W)`` plane, with the
    order-to-chaos line ``chi_perp = 1`` and the critical points marked.

    Default grid: ``grid`` values of ``C_b`` in [0, bias_max] and of ``C_W`` in
    [0.25, 2.5] times the critical ``C_W``; the flow starts at ``K^{(1)} = C_b + C_W q`` with
    ``q = input_var``."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    from widenets.theory.effective.activations import check_activation, from_name

    act = from_name(activation) if isinstance(activation, str) else check_activation(activation)
    c = criticality(act)
    cw0 = c.points[0].weight_var if c.points else 1.0
    bias_vars = np.linspace(0, bias_max, grid) if bias_vars is None else np.asarray(bias_vars)
    weight_vars = np.linspace(0.25 * cw0, 2.5 * cw0, grid) if weight_vars is None \
        else np.asarray(weight_vars)
    pd = phase_diagram(act, bias_vars, weight_vars, input_var)
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, values, label in ((axes[0], pd.chi_parallel, r"$\chi_\parallel$"),
                              (axes[1], pd.chi_perpendicular, r"$\chi_\perp$")):
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        norm = TwoSlopeNorm(vcenter=1.0, vmin=min(lo, 0.99), vmax=max(hi, 1.01))
        mesh = ax.pcolormesh(pd.bias_vars, pd.weight_vars, values, cmap="RdBu_r", norm=norm,
                             shading="auto")
        ax.contour(pd.bias_vars, pd.weight_vars, values, levels=[1.0], colors="k",
                   linewidths=1)
        fig.colorbar(mesh, ax=ax, label=f"{label} at the fixed point (dimensionless)")
        for p in c.points:
            ax.plot(p.bias_var, p.weight_var, "*" if p.usable else "x", color="gold",
                    ms=14 if p.usable else 9, mec="k",
                    label=f"critical ({p.kind}{'' if p.usable else ', unusable'})")
        ax.set_xlabel(r"bias variance $C_b$")
        ax.set_title(label + " (black line: = 1)")
    axes[0].set_ylabel(r"weight variance $C_W$")
    if c.points:
        axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{c.message}: ordered (chi_perp < 1) vs chaotic (chi_perp > 1) phases")
    rows = [[float(b), float(w), float(pd.fixed_point[i, j]), float(pd.chi_parallel[i, j]),
             float(pd.chi_perpendicular[i, j])]
            for i, w in enumerate(pd.weight_vars) for j, b in enumerate(pd.bias_vars)]
    return fig, {"columns": ["bias_var", "weight_var", "fixed_point", "chi_parallel",
                             "chi_perpendicular"], "rows": rows,
                 "critical_points": [[p.kind, p.bias_var, p.weight_var, p.fixed_point,
                                      p.usable] for p in c.points]}

