"""``widenets learning-curve``: test error against width, theory vs sampled networks.

Draws the seed paper's Figure 1 (Pacelli et al., Nat. Mach. Intell. 2023): for a two-class
regression task (spec §7.1, labels -1/+1) the proportional theory's test error against the
hidden width N_1, for several training-set sizes P and readout priors lambda_1, the
infinite-width GP, and networks sampled by Langevin dynamics with Monte Carlo error bars.
Writes ``learning_curve.{png,svg,csv,json}`` and ``settings.json`` into ``--out``.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import typer

from widenets.cli import app
from widenets.errors import HyperparameterError, expected


def _ints(name: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise HyperparameterError(expected(f"--{name}", "comma-separated integers",
                                           repr(text))) from err


def _floats(name: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise HyperparameterError(expected(f"--{name}", "comma-separated numbers",
                                           repr(text))) from err


@app.command("learning-curve")
def learning_curve_command(
    data: str = typer.Option("mnist", help="mnist, fashion-mnist or cifar10 (grey)."),
    arch: str = typer.Option("1hl-erf", help="A bias-free fully connected preset."),
    widths: str = typer.Option("50,100,200,500,1000", help="Hidden widths N_1 (range of "
                               "the theory line)."),
    n_train: str = typer.Option("500", "--n-train", help="Training-set sizes P."),
    priors: str = typer.Option("1,10,100", help="Readout priors (precisions) lambda_1."),
    input_prior: float = typer.Option(1.0, help="Input-layer precision lambda_0."),
    temperature: float = typer.Option(
        1e-3, help="Temperature T (likelihood variance); the paper's 1e-3 by default. Langevin "
        "chains mix in minutes only at T >~ 0.05 (unconverged points are flagged)."),
    n_test: int = typer.Option(1000, help="Test images (at most those of the two classes)."),
    classes: str = typer.Option("0,1", help="The two classes (labels -1, +1)."),
    pool: int = typer.Option(1, help="Average-pool the images by this factor."),
    langevin_widths: str = typer.Option("50,100", help="Widths of the sampled networks "
                                        "('' for none)."),
    langevin_priors: str = typer.Option("1,100", help="lambda_1 of the sampled networks "
                                        "('' for all)."),
    langevin_n_train: str = typer.Option("", help="P of the sampled networks ('' for all)."),
    langevin_steps: int = typer.Option(3000, help="Langevin steps per chain."),
    langevin_chains: int = typer.Option(4, help="Independent chains per point."),
    seed: int = typer.Option(0, help="Seed of the data subset and of the chains."),
    threads: int = typer.Option(None, help="Limit torch and BLAS threads (on a shared, "
                                "oversubscribed machine 1 can be 100x faster)."),
    data_dir: str = typer.Option(None, help="Data directory (default: $WIDENETS_DATA)."),
    out: Path = typer.Option(None, help="Output directory (default: "
                             "learning-curve-<data>-<arch>)."),
) -> None:
    """Test error against hidden width: proportional theory vs Langevin-sampled networks."""
    from widenets.theory.proportional.learning_curve import LearningCurveSettings

    settings = LearningCurveSettings(
        data=data, arch=arch, widths=_ints("widths", widths),
        n_train=_ints("n-train", n_train), readout_priors=_floats("priors", priors),
        input_prior=input_prior, temperature=temperature, n_test=n_test,
        classes=_ints("classes", classes), pool=pool,
        langevin_widths=_ints("langevin-widths", langevin_widths),
        langevin_priors=_floats("langevin-priors", langevin_priors),
        langevin_n_train=_ints("langevin-n-train", langevin_n_train),
        langevin_steps=langevin_steps, langevin_chains=langevin_chains, seed=seed,
        data_dir=data_dir)
    out = Path(out) if out is not None else Path(f"learning-curve-{data}-{arch}")
    with _thread_limit(threads):
        write_learning_curve(settings, out, echo=typer.echo)


@contextlib.contextmanager
def _thread_limit(threads: int | None):
    if threads is None:
        yield
        return
    if threads < 1:
        raise HyperparameterError(expected("--threads", "a positive int", threads))
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # optional: numpy/scipy BLAS keep their threads
            yield
        else:
            with threadpool_limits(threads):
                yield
    finally:
        torch.set_num_threads(before)


def write_learning_curve(settings, out: Path, echo=print) -> dict:
    """Compute, draw and write the learning curve; return the JSON-ready data."""
    from widenets.theory.proportional.figures import learning_curve_figure
    from widenets.theory.proportional.learning_curve import learning_curve

    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2))
    curve = learning_curve(settings, echo=echo)
    fig, data = learning_curve_figure(curve)
    for suffix in ("png", "svg"):
        fig.savefig(out / f"learning_curve.{suffix}", dpi=150)
    columns = sorted({key for row in data["rows"] for key in row})
    with open(out / "learning_curve.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(data["rows"])
    (out / "learning_curve.json").write_text(json.dumps(data, indent=2, default=float))
    for note in data["warnings"]:
        echo(f"warning: {note}")
    echo(f"wrote {out}/learning_curve.{{png,svg,csv,json}} and settings.json")
    return data
