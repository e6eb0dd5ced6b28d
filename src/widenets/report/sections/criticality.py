"""Section 2: criticality and the 1/n effective theory (Roberts, Yaida & Hanin 2022).

Figures come from :mod:`widenets.theory.effective.figures`: the phase diagram of
susceptibilities, the four-point vertex against the aspect ratio L/n with Monte Carlo points,
and the NTK's relative variance against width.
"""

from __future__ import annotations

import warnings

import widenets as wn
from widenets.errors import WidenetsWarning
from widenets.report.context import ReportContext, Section, Table
from widenets.theory import criticality
from widenets.theory.effective import figures

ACTIVATIONS = {"tanh": wn.Tanh(), "erf": wn.Erf(), "relu": wn.Relu(), "gelu": wn.Gelu(),
               "swish (SiLU)": wn.Silu()}


def _sizes(ctx: ReportContext) -> dict:
    if ctx.smoke:
        return {"grid": 9, "widths": (32,), "depths": (2, 4), "mc": 200,
                "ntk_widths": (16, 32), "ntk_mc": 40}
    if ctx.quick:
        return {"grid": 21, "widths": (32, 128), "depths": (2, 4, 8), "mc": 1000,
                "ntk_widths": (16, 32, 64), "ntk_mc": 100}
    return {"grid": 41, "widths": (32, 128, 512), "depths": (2, 4, 8, 12, 16), "mc": 4000,
            "ntk_widths": (16, 32, 64, 128, 256), "ntk_mc": 300}


def _critical_table() -> Table:
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WidenetsWarning)
        for name, act in ACTIVATIONS.items():
            c = criticality(act)
            usable = [p for p in c.points if p.usable]
            for p in usable or [None]:
                rows.append([name, c.message.split(": ", 1)[-1],
                             "-" if p is None else f"{p.bias_var:.9g}",
                             "-" if p is None else f"{p.weight_var:.9g}",
                             "-" if p is None else
                             "any" if p.fixed_point is None else f"{p.fixed_point:.9g}"])
    return Table("Critical initialisations found by the solver (C_b = bias_std^2, "
                 "C_W = weight_std^2)", ["activation", "class", "C_b", "C_W", "K*"], rows)


def build(ctx: ReportContext) -> Section:
    s = _sizes(ctx)
    phase, _ = ctx.cached_figure(
        "phase_diagram", {"activation": "tanh", "grid": s["grid"]},
        lambda: figures.phase_diagram_figure("tanh", grid=s["grid"]),
        "Susceptibilities of tanh networks at the kernel's fixed point over the (C_b, C_W) "
        "plane; the black line chi = 1 separates the ordered and chaotic phases, the star marks "
        "the critical point (C_b, C_W) = (0, 1).")
    settings_v = {"widths": s["widths"], "depths": s["depths"], "n_networks": s["mc"],
                  "seed": ctx.seed}
    vertex, vdata = ctx.cached_figure(
        "vertex_vs_aspect_ratio", settings_v,
        lambda: figures.vertex_vs_aspect_ratio(widths=s["widths"], depths=s["depths"],
                                               n_networks=s["mc"], seed=ctx.seed),
        "Normalised four-point vertex V/(n K^2) of the output at criticality against the "
        "aspect ratio L/n: Monte Carlo over sampled networks (points, standard errors) and the "
        "O(1/n) recursion (lines); ReLU also with its exact finite-width curve.")
    settings_n = {"widths": s["ntk_widths"], "n_networks": s["ntk_mc"], "seed": ctx.seed}
    ntk, ndata = ctx.cached_figure(
        "ntk_variance_vs_width", settings_n,
        lambda: figures.ntk_variance_vs_width(widths=s["ntk_widths"], n_networks=s["ntk_mc"],
                                              seed=ctx.seed),
        "Relative variance of the NTK of networks built by net.module() at criticality, depth 4, "
        "against width: points with standard errors, the (A + 2B)/(n H^2) recursion as lines.")
    z_v = [abs(r[4] - r[6]) / r[5] for r in vdata["rows"] if r[5] > 0]
    z_n = [abs(r[3] - r[5]) / r[4] for r in ndata["rows"] if r[4] > 0]
    return Section(
        key="criticality", title="2. Criticality and the 1/n effective theory",
        prediction="At criticality (chi_par = chi_perp = 1) signals propagate through depth by "
                   "power laws instead of exponentials; finite-width corrections then grow "
                   "with the aspect ratio L/n: V/K^2 = nu (L - 1) for ReLU-like activations "
                   "(nu = 5 for ReLU), about (2/3) L for tanh-like ones, and the NTK's relative "
                   "variance (A + 2B)/(n H^2) falls like 1/n at fixed depth.",
        settings={"phase diagram": f"tanh, {s['grid']}x{s['grid']} grid",
                  "vertex": f"widths {list(s['widths'])}, depths {list(s['depths'])}, "
                            f"{s['mc']} sampled networks per point",
                  "NTK variance": f"tanh and ReLU, depth 4, widths {list(s['ntk_widths'])}, "
                                  f"{s['ntk_mc']} networks per point"},
        figures=[phase, vertex, ntk], tables=[_critical_table()],
        findings=[f"V/(nK^2): median |MC - theory| = {sorted(z_v)[len(z_v) // 2]:.2f} standard "
                  f"errors over {len(z_v)} (activation, width, depth) points (the 1/n theory "
                  "is leading order: larger L/n bends away)",
                  f"NTK relative variance: median |MC - theory| = "
                  f"{sorted(z_n)[len(z_n) // 2]:.2f} standard errors over {len(z_n)} points"],
    )
