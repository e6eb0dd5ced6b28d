"""``widenets criticality`` and ``widenets phase-diagram``: criticality of an activation
(PDLT ch. 5; effective_theory.md §3)."""

from __future__ import annotations

from pathlib import Path

import typer

from widenets.cli import app

ACTIVATION_HELP = ("tanh, erf, sin, relu, leaky_relu, linear, abs, gelu (z Phi(z)), "
                   "swish (z sigmoid(z)), sigmoid, softplus")


def _activation(name: str, slope: float | None):
    import torch

    from widenets.theory.effective.activations import from_name

    # the computations are many small tensor operations: extra threads only add contention
    torch.set_num_threads(1)
    return from_name(name, slope)


@app.command()
def criticality(
    activation: str = typer.Option(..., "--activation", "-a", help=ACTIVATION_HELP),
    slope: float = typer.Option(None, "--slope", help="Negative slope of leaky_relu (0.01)."),
    depth: int = typer.Option(16, "--depth", help="Depth L for the V/K^2 table."),
    offset: float = typer.Option(0.1, "--offset",
                                 help="Relative change of C_W for the correlation depths."),
) -> None:
    """Universality class, critical initialisation, depth scaling of V/K^2 and the
    correlation depths away from criticality."""
    from widenets.errors import HyperparameterError, expected
    from widenets.theory.effective.critical import criticality as solve

    if depth < 1:
        raise HyperparameterError(expected("--depth", "a positive int", depth))
    if not 0 < offset < 1:
        raise HyperparameterError(expected("--offset", "a number in (0, 1)", offset))
    act = _activation(activation, slope)
    result = solve(act)
    typer.echo(str(result))
    if result.universality_class == "none":
        return
    point = result.point
    typer.echo(f"critical initialisation: bias_var (C_b) = {point.bias_var:.12g}, "
               f"weight_var (C_W) = {point.weight_var:.12g}")
    _vertex_table(result, depth)
    _correlation_depths(act, point, offset)


def _vertex_table(result, depth: int) -> None:
    """V/K^2 per layer at criticality from the single-input recursion."""
    from widenets.theory.effective import scalar
    from widenets.theory.effective.activations import ActivationInfo
    from widenets.theory.effective.recursions import Hyper

    point = result.point
    k1 = point.fixed_point if point.fixed_point else 1.0
    g0 = (k1 - point.bias_var) / point.weight_var
    hyper = Hyper(point.bias_var, point.weight_var, 1.0, 1.0)
    r = scalar.run(g0, [hyper] * depth, [1.0] * (depth - 1), ActivationInfo(result.activation))
    start = "K* " if point.fixed_point else ""
    typer.echo(f"V/K^2 at criticality, started at K^(1) = {start}{k1:.6g}:")
    layers = sorted({2, 4, 8, depth} & set(range(1, depth + 1)) | {depth})
    for layer in layers:
        v, k = r["V"][layer - 1], r["K"][layer - 1]
        typer.echo(f"  l = {layer:4d}: V/K^2 = {v / k**2:10.5f}   V/(l K^2) = "
                   f"{v / (k**2 * layer):.5f}   K = {k:.6g}")


def _correlation_depths(act, point, offset: float) -> None:
    from widenets.theory.effective.phase import fixed_point

    typer.echo(f"away from criticality (C_W x (1 -+ {offset:g}), C_b = {point.bias_var:.6g}, "
               "input |x|^2/n0 = 1):")
    for factor in (1 - offset, 1 + offset):
        cw = point.weight_var * factor
        fp = fixed_point(act, point.bias_var, cw)
        typer.echo(f"  C_W = {cw:.6g}: K* = {fp.fixed_point:.6g}, chi_par = "
                   f"{fp.chi_parallel:.6f}, chi_perp = {fp.chi_perpendicular:.6f} "
                   f"({fp.phase}); correlation depths xi_par = {fp.depth_parallel:.4g}, "
                   f"xi_perp = {fp.depth_perpendicular:.4g} layers")


@app.command("phase-diagram")
def phase_diagram(
    activation: str = typer.Option(..., "--activation", "-a", help=ACTIVATION_HELP),
    out: Path = typer.Option(Path("phase_diagram.png"), "--out", "-o",
                             help="Figure file (.png, .svg or .pdf); the data go to .csv."),
    slope: float = typer.Option(None, "--slope", help="Negative slope of leaky_relu."),
    bias_max: float = typer.Option(1.0, "--bias-max", help="Largest C_b shown."),
    grid: int = typer.Option(41, "--grid", help="Grid points per axis."),
) -> None:
    """Figure of chi_par and chi_perp over the (C_b, C_W) plane with the critical points."""
    import csv

    from widenets.errors import HyperparameterError, expected
    from widenets.theory.effective.figures import phase_diagram_figure

    if grid < 3:
        raise HyperparameterError(expected("--grid", "an int >= 3", grid))
    if not bias_max > 0:
        raise HyperparameterError(expected("--bias-max", "a number > 0", bias_max))
    _check_figure_path(out)
    act = _activation(activation, slope)
    fig, data = phase_diagram_figure(act, grid=grid, bias_max=bias_max)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    table = out.with_suffix(".csv")
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(data["columns"])
        writer.writerows(data["rows"])
    typer.echo(f"wrote {out} and {table}")
    for kind, cb, cw, k, usable in data["critical_points"]:
        typer.echo(f"  critical point ({kind}{'' if usable else ', unusable'}): C_b = {cb:.6g}, "
                   f"C_W = {cw:.6g}" + ("" if k is None else f", K* = {k:.6g}"))



def _check_figure_path(out: Path) -> None:
    """A format matplotlib writes and a directory that can be created, before any work."""
    from matplotlib.backend_bases import FigureCanvasBase

    from widenets.errors import HyperparameterError, expected

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if out.suffix.lstrip(".").lower() not in formats:
        raise HyperparameterError(expected("--out", f"a file name ending in one of "
                                           f"{', '.join('.' + f for f in formats)}", str(out)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HyperparameterError(expected("--out", "a path whose directory can be created",
                                           f"{out} ({err.strerror or err})")) from err
