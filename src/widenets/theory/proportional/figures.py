"""Report-ready figures of the proportional theory (matplotlib, imported when called)."""

from __future__ import annotations

from widenets.theory.proportional.learning_curve import (
    LearningCurve,
    LearningCurveSettings,
    learning_curve,
)


def learning_curve_figure(curve: LearningCurve | None = None, *,
                          settings: LearningCurveSettings | None = None):
    """Test error against hidden width N_1: the seed paper's Figure 1 (Pacelli et al. 2023).

    One panel per training-set size P: a theory line per readout prior lambda_1, the
    infinite-width GP as a dashed line of the same colour, Langevin-sampled networks as
    points with error bars (Monte Carlo standard errors); a last panel shows Qbar against
    alpha = P / N_1, with the sampled readout order parameter ``lambda_1 |v|^2 / N_1``.

    Parameters
    ----------
    curve : LearningCurve, optional
        Computed by :func:`.learning_curve.learning_curve`; computed from ``settings``
        (default settings if None) when not given.

    Returns
    -------
    fig : matplotlib.figure.Figure
    data : dict
        ``rows`` (one dict per point, CSV-ready), ``findings``, ``settings``, ``task`` and
        ``warnings``: everything the figure shows.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if curve is None:
        curve = learning_curve(settings or LearningCurveSettings())
    sizes = sorted({r["n_train"] for r in curve.rows})
    lams = sorted({r["readout_prior"] for r in curve.rows})
    colours = plt.get_cmap("viridis")([i / max(len(lams) - 1, 1) * 0.85 for i in
                                       range(len(lams))])
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(4.2 * (len(sizes) + 1) + 2.2, 3.6),
                             squeeze=False, constrained_layout=True)
    for ax, p in zip(axes[0], sizes, strict=False):
        for lam, colour in zip(lams, colours, strict=True):
            _panel(ax, curve.rows, p, lam, colour)
        ax.set(xscale="log", xlabel="hidden width $N_1$", ylabel="test error",
               title=f"P = {p}")
        widths = sorted({r["width"] for r in curve.rows if r["kind"] in ("theory", "langevin")
                         and r["n_train"] == p})
        ax.set_xticks([w for w in curve.settings.widths if w in widths] or widths[:: max(
            len(widths) // 5, 1)])
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax = axes[0][-1]
    for lam, colour in zip(lams, colours, strict=True):
        for p, marker, style in zip(sizes, "osd^v<>", ("-", "--", ":", "-."), strict=False):
            pts = sorted((r for r in curve.rows if r["kind"] in ("theory", "qbar_sweep")
                          and r["n_train"] == p and r["readout_prior"] == lam),
                         key=lambda r: r["alpha"])
            ax.plot([r["alpha"] for r in pts], [r["qbar"] for r in pts], color=colour,
                    ls=style, label=f"P = {p}" if lam == lams[0] else None)
            lang = [r for r in curve.rows if r["kind"] == "langevin" and r["n_train"] == p
                    and r["readout_prior"] == lam]
            if lang:
                ax.errorbar([r["alpha"] for r in lang], [r["qbar"] for r in lang],
                            yerr=[r["qbar_se"] for r in lang], fmt=marker, color=colour,
                            capsize=3, ms=5)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if len(sizes) > 1:
        ax.legend(fontsize=7, loc="best")
    ax.set(xscale="log", yscale="log", xlabel=r"$\alpha = P / N_1$",
           ylabel=r"$\bar Q$ (readout order parameter)", title=r"$\bar Q \to 1$ as $\alpha \to 0$")
    legend = {}
    for ax in axes[0][:-1]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend.keys()), fontsize=7, loc="outside right upper")
    s = curve.settings
    fig.suptitle(f"{curve.task}; {s.arch}, T = {s.temperature:g}, "
                 f"$\\lambda_0$ = {s.input_prior:g}", fontsize=9)
    data = dict(rows=curve.rows, findings=curve.findings, settings=s.to_dict(),
                task=curve.task, warnings=curve.warnings)
    return fig, data


def _panel(ax, rows, p, lam, colour) -> None:
    line = sorted((r for r in rows if r["kind"] == "theory" and r["n_train"] == p
                   and r["readout_prior"] == lam), key=lambda r: r["width"])
    ax.plot([r["width"] for r in line], [r["test_error"] for r in line], color=colour,
            label=rf"theory, $\lambda_1$ = {lam:g}")
    inf = [r for r in rows if r["kind"] == "infinite" and r["n_train"] == p
           and r["readout_prior"] == lam]
    if inf:
        ax.axhline(inf[0]["test_error"], color=colour, ls="--", lw=1,
                   label=rf"infinite width, $\lambda_1$ = {lam:g}")
    lang = [r for r in rows if r["kind"] == "langevin" and r["n_train"] == p
            and r["readout_prior"] == lam]
    for converged in (True, False):
        pts = [r for r in lang if r["converged"] is converged]
        if pts:  # hollow markers: R-hat >= 1.1 or ESS < 100
            ax.errorbar([r["width"] for r in pts], [r["test_error"] for r in pts],
                        yerr=[r["test_error_se"] for r in pts], fmt="o", color=colour,
                        mfc=colour if converged else "none", capsize=3, ms=5,
                        label=rf"Langevin, $\lambda_1$ = {lam:g}"
                        + ("" if converged else " (not converged)"))
