"""Section 3: beyond infinite width, the proportional-limit theory of Bayesian networks.

The seed paper's Figure 1 (Pacelli et al. 2023): test error of a one-hidden-layer erf network
against its hidden width N_1 at fixed training-set size P, theory lines (renormalised kernel,
proportional.md §2-4) for several readout priors lambda_1, the infinite-width GP, and
networks of that width sampled from their posterior by Langevin dynamics
(:mod:`widenets.finite.langevin`).
"""

from __future__ import annotations

import numpy as np
import torch

from widenets.report.context import ReportContext, Section, Table
from widenets.theory.proportional.figures import learning_curve_figure
from widenets.theory.proportional.learning_curve import LearningCurveSettings, learning_curve

COLUMNS = ("kind", "n_train", "readout_prior", "width", "alpha", "r", "test_error",
           "test_error_se", "train_error", "train_error_se", "qbar", "qbar_se", "converged",
           "z_test_error", "z_train_error", "z_qbar")


def settings_for(ctx: ReportContext) -> tuple[LearningCurveSettings, LearningCurveSettings]:
    """Two runs: the paper's Figure 1 at its temperature T = 1e-3 (theory lines), and theory
    against Langevin-sampled networks at T = 0.05, where chains mix within minutes here (at
    T = 1e-3 a chain's effective sample size after 2000 steps is about 6).  Digits has 121
    test images of classes 0 and 1."""
    if ctx.smoke:
        paper = dict(widths=(10, 100), n_train=(50,), readout_priors=(1.0, 10.0), n_test=50)
        sampled = dict(widths=(10, 20, 40), n_train=(50,), n_test=50, langevin_widths=(20,),
                       langevin_steps=60, langevin_chains=2)
    elif ctx.quick:
        paper = dict(widths=(5, 10, 20, 50, 100, 200, 500), n_train=(50, 150),
                     readout_priors=(1.0, 10.0), n_test=100)
        sampled = dict(widths=(10, 20, 50, 100, 200), n_train=(150,), n_test=100,
                       langevin_widths=(50,), langevin_steps=1500, langevin_chains=4)
    else:
        paper = dict(widths=(5, 10, 20, 50, 100, 200, 500, 1000), n_train=(50, 150),
                     readout_priors=(0.5, 1.0, 10.0, 100.0), n_test=100)
        sampled = dict(widths=(10, 20, 50, 100, 200), n_train=(150,), n_test=100,
                       langevin_widths=(20, 100), langevin_steps=4000, langevin_chains=4)
    if ctx.data != "digits":  # the bundled data sets have thousands of images per class
        paper.update(n_train=(100, 400), n_test=500)
        sampled.update(n_train=(200,), n_test=500)
    common = dict(data=ctx.data, arch="1hl-erf", seed=ctx.seed, data_dir=ctx.data_dir)
    return (LearningCurveSettings(temperature=1e-3, **common, **paper),
            LearningCurveSettings(temperature=0.05, readout_priors=(1.0,), **common, **sampled))


def _draw(settings: LearningCurveSettings, log) -> tuple:
    # these problems are small: one thread is several times faster than two on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        curve = learning_curve(settings, echo=log)
    finally:
        torch.set_num_threads(threads)
    fig, data = learning_curve_figure(curve)
    data["columns"] = list(COLUMNS)
    data["rows"] = [[row.get(c) for c in COLUMNS] for row in data["rows"]]
    return fig, data


def _langevin_table(data: dict) -> Table:
    rows = []
    for row in data["rows"]:
        r = dict(zip(COLUMNS, row, strict=True))
        if r["kind"] != "langevin":
            continue
        rows.append([r["n_train"], f"{r['readout_prior']:g}", r["width"],
                     f"{r['test_error']:.4f} ± {r['test_error_se']:.4f}",
                     f"{r['z_test_error']:+.1f}",
                     f"{r['train_error']:.4f} ± {r['train_error_se']:.4f}",
                     f"{r['z_train_error']:+.1f}", f"{r['qbar']:.3f} ± {r['qbar_se']:.3f}",
                     f"{r['z_qbar']:+.1f}", "yes" if r["converged"] else "no"])
    return Table("Langevin-sampled networks against the theory at the same width (z: "
                 "(sampled - theory) / standard error; converged: R-hat < 1.1 and ESS >= 100)",
                 ["P", "lambda_1", "N_1", "test error", "z", "train error", "z",
                  "Qbar", "z", "converged"], rows)


def _findings(data: dict, sampled_only: bool = False) -> list[str]:
    f = data["findings"]
    out = []
    if sampled_only:
        f = {k: v for k, v in f.items() if k == "langevin_z"}
        f.update(lambda_lowers_error=[], finite_vs_infinite=[], width_spread=[],
                 qbar_to_one=[])
    for item in f["lambda_lowers_error"]:
        out.append(f"P = {item['n_train']}: larger lambda_1 lowers the test error at "
                   f"{item['fraction_of_widths']:.0%} of widths")
    for item in f["finite_vs_infinite"]:
        verdict = ("finite beats infinite" if item["finite_beats_infinite"] else
                   "infinite beats finite" if item["finite_worse_than_infinite"] else "mixed")
        out.append(f"P = {item['n_train']}, lambda_1 = {item['readout_prior']:g}: r = "
                   f"{item['r']:.3g}, {verdict} (T = 0 theory: finite beats infinite exactly "
                   f"when r < 1; {'as predicted' if item['as_predicted'] else 'NOT as predicted'})")
    spreads = {}
    for item in f["width_spread"]:
        spreads.setdefault(item["n_train"], []).append((item["readout_prior"], item["spread"]))
    for p, pairs in spreads.items():
        out.append(f"P = {p}: spread of the test error over N_1 per lambda_1: " + ", ".join(
            f"{lam:g}: {s:.2g}" for lam, s in pairs))
    for item in f["qbar_to_one"]:
        if item["smallest_alpha"] is not None:
            out.append(f"P = {item['n_train']}, lambda_1 = {item['readout_prior']:g}: Qbar = "
                       f"{item['qbar_smallest_alpha']:.4f} at alpha = "
                       f"{item['smallest_alpha']:.0e} (theory: Qbar -> 1 as alpha -> 0)")
    z = [abs(v) for item in f.get("langevin_z", []) for k, v in item.items()
         if k.startswith("z_") and v is not None and np.isfinite(v)]
    if z:
        out.append(f"Langevin against theory: max |z| = {max(z):.1f} over {len(z)} "
                   "observables (see the table; unconverged chains are drawn hollow)")
    out += [] if sampled_only else [f"warning: {w}" for w in data["warnings"][:1]]
    return out


def build(ctx: ReportContext) -> Section:
    paper, sampled = settings_for(ctx)
    figure, data = ctx.cached_figure(
        "learning_curve", paper.to_dict(), lambda: _draw(paper, ctx.log),
        "The seed paper's Figure 1 at its temperature T = 1e-3: test error (mean squared error "
        "of the output against the ±1 labels) of one-hidden-layer erf networks against hidden "
        "width N_1, one panel per training-set size P, proportional-limit theory (lines) for "
        "several readout priors lambda_1 and the infinite-width NNGP (dashed); last panel: the "
        "readout order parameter Qbar against alpha = P/N_1.")
    figure_s, data_s = ctx.cached_figure(
        "learning_curve_sampled", sampled.to_dict(), lambda: _draw(sampled, ctx.log),
        "Theory against networks of that width sampled from their posterior by Langevin "
        "dynamics (MALA, repriorised readout; points with Monte Carlo standard errors, hollow "
        "if R-hat >= 1.1 or ESS < 100) at T = 0.05, lambda_1 = 1.")
    s = sampled
    return Section(
        key="proportional", title="3. Beyond infinite width: the proportional limit",
        prediction="When the training-set size P is comparable to the width N_1, a Bayesian "
                   "network is a GP whose kernel is renormalised by one scalar Qbar (per layer) "
                   "found at a saddle point: a larger readout prior lambda_1 lowers the test "
                   "error, the dependence on N_1 fades at large lambda_1, the finite network "
                   "beats the infinite one exactly when r < 1, and Qbar -> 1 as alpha -> 0.",
        settings={"task": data["task"], "architecture": f"{paper.arch} (N_0 -> N_1 -> 1)",
                  "P (n_train)": list(paper.n_train), "n_test": paper.n_test,
                  "readout priors lambda_1": list(paper.readout_priors),
                  "input prior lambda_0": paper.input_prior,
                  "temperature T": f"{paper.temperature:g} (figure 1), {s.temperature:g} "
                                   "(sampled networks)",
                  "theory widths": f"{min(paper.widths)}..{max(paper.widths)}",
                  "Langevin": f"N_1 in {list(s.langevin_widths)}, P = {list(s.n_train)}, "
                              f"lambda_1 = {list(s.readout_priors)}, {s.langevin_chains} "
                              f"chains x {s.langevin_steps} steps, repriorised"},
        figures=[figure, figure_s], tables=[_langevin_table(data_s)],
        findings=_findings(data) + _findings(data_s, sampled_only=True))
