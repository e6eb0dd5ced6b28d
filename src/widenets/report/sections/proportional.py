"""Section 3: beyond infinite width, the proportional-limit theory of Bayesian networks.

The seed paper's Figure 1 (Pacelli et al. 2023): test error of a one-hidden-layer erf network
against its hidden width N_1 at fixed training-set size P, theory lines (renormalised kernel,
proportional.md §2-4) for several readout priors lambda_1, the infinite-width GP, and
networks of that width sampled from their posterior by Langevin dynamics
(:mod:`widenets.finite.langevin`).
"""

from __future__ import annotations

import numpy as np

from widenets.report.context import ReportContext, Section, Table
from widenets.theory.proportional.figures import learning_curve_figure
from widenets.theory.proportional.learning_curve import LearningCurveSettings, learning_curve

COLUMNS = ("kind", "n_train", "readout_prior", "width", "alpha", "r", "test_error",
           "test_error_se", "train_error", "train_error_se", "qbar", "qbar_se", "converged",
           "z_test_error", "z_train_error", "z_qbar")


def settings_for(ctx: ReportContext) -> LearningCurveSettings:
    """Sizes per report mode; digits 0 vs 1 has 360 images, so P + n_test stays below that."""
    if ctx.smoke:
        sizes = dict(widths=(10, 100), n_train=(50,), readout_priors=(1.0, 10.0), n_test=50,
                     langevin_widths=(20,), langevin_steps=60, langevin_chains=2)
    elif ctx.quick:
        sizes = dict(widths=(5, 10, 20, 50, 100, 200), n_train=(50, 150),
                     readout_priors=(1.0, 10.0), n_test=150, langevin_widths=(50,),
                     langevin_steps=600, langevin_chains=2)
    else:
        sizes = dict(widths=(5, 10, 20, 50, 100, 200, 500), n_train=(50, 150),
                     readout_priors=(0.5, 1.0, 10.0), n_test=150, langevin_widths=(20, 100),
                     langevin_steps=2000, langevin_chains=2)
    if ctx.data != "digits":  # the bundled data sets have thousands of images per class
        sizes.update(n_train=(100, 400), n_test=500)
    return LearningCurveSettings(data=ctx.data, arch="1hl-erf", temperature=1e-3,
                                 langevin_priors=(1.0,), langevin_n_train=(sizes["n_train"][-1],),
                                 seed=ctx.seed, data_dir=ctx.data_dir, **sizes)


def _draw(settings: LearningCurveSettings, log) -> tuple:
    curve = learning_curve(settings, echo=log)
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


def _findings(data: dict) -> list[str]:
    f = data["findings"]
    out = []
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
    out += [f"warning: {w}" for w in data["warnings"][:2]]
    return out


def build(ctx: ReportContext) -> Section:
    settings = settings_for(ctx)
    figure, data = ctx.cached_figure(
        "learning_curve", settings.to_dict(), lambda: _draw(settings, ctx.log),
        "Test error of one-hidden-layer erf networks against hidden width N_1 (log axis), one "
        "panel per training-set size P (test error: mean squared error of the output against "
        "the ±1 labels): proportional-limit theory (lines) for several readout "
        "priors lambda_1, the infinite-width NNGP (dashed), and networks of that width sampled "
        "from their posterior by Langevin dynamics (points, Monte Carlo standard errors); last "
        "panel: the readout order parameter Qbar against alpha = P/N_1.")
    s = settings
    return Section(
        key="proportional", title="3. Beyond infinite width: the proportional limit",
        prediction="When the training-set size P is comparable to the width N_1, a Bayesian "
                   "network is a GP whose kernel is renormalised by one scalar Qbar (per layer) "
                   "found at a saddle point: a larger readout prior lambda_1 lowers the test "
                   "error, the dependence on N_1 fades at large lambda_1, the finite network "
                   "beats the infinite one exactly when r < 1, and Qbar -> 1 as alpha -> 0.",
        settings={"task": data["task"], "architecture": f"{s.arch} (N_0 -> N_1 -> 1)",
                  "P (n_train)": list(s.n_train), "n_test": s.n_test,
                  "readout priors lambda_1": list(s.readout_priors),
                  "input prior lambda_0": s.input_prior, "temperature T": s.temperature,
                  "theory widths": f"{min(s.widths)}..{max(s.widths)}",
                  "Langevin": f"N_1 in {list(s.langevin_widths)}, P = {list(s.langevin_n_train)},"
                              f" lambda_1 = {list(s.langevin_priors)}, {s.langevin_chains} "
                              f"chains x {s.langevin_steps} steps, repriorised"},
        figures=[figure], tables=[_langevin_table(data)], findings=_findings(data))
