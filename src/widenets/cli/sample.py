"""``widenets sample``: Langevin samples of a finite network's Bayesian posterior on real data.

Regression targets (the Bayesian setting of Pacelli et al. 2023 is a regression with a sum of
squared errors): ``--labels parity`` gives the scalar target +1 for even and -1 for odd class
indices (digits: even/odd numbers), so every class of the balanced subset is used;
``--labels onehot`` gives one-hot targets minus 0.1 and as many outputs as classes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from widenets.cli import app


def _targets(dataset, labels: str):
    import torch

    from widenets.errors import HyperparameterError, expected

    if labels == "parity":
        return [torch.where(y % 2 == 0, 1.0, -1.0).to(torch.float64)[:, None]
                for y in (dataset.y_train, dataset.y_test)]
    if labels == "onehot":
        return [dataset.one_hot(split, centre=0.1) for split in ("train", "test")]
    raise HyperparameterError(expected("labels", "'parity' or 'onehot'", repr(labels)))


def _errors(samples, y_train, y_test) -> dict:
    """Posterior-averaged MSEs, and the errors of the posterior-mean predictor."""
    import torch

    out = {}
    for split, y, f in (("train", y_train, samples.train_predictions),
                        ("test", y_test, samples.test_predictions)):
        mean = f.mean(0)
        out[f"{split}_mse_of_mean"] = float(((mean - y) ** 2).mean())
        if y.shape[1] == 1:
            wrong = torch.sign(mean) != torch.sign(y)
        else:
            wrong = mean.argmax(1, keepdim=True) != y.argmax(1, keepdim=True)
        out[f"{split}_classification_error"] = float(wrong.double().mean())
    return out


def _report(samples, extra: dict, echo) -> dict:
    s = samples.summary()
    ess, rhat = s["ess"], s["rhat"]

    def line(label, key):
        mean, se = s[key]
        rh = rhat.get(key, float("nan"))
        echo(f"  {label:<44} {mean:.5g} ± {se:.2g}   (ESS {ess.get(key, float('nan')):.0f}"
             + (f", R-hat {rh:.3f})" if rh == rh else ")"))

    echo(f"posterior: {s['n_samples']} draws ({s['n_chains']} chain(s)), acceptance "
         f"{s['acceptance_rate']:.2f}, step size {s['step_size']:.3g}, "
         f"{s['seconds']:.1f} s of sampling")
    line("train error (MSE, posterior average)", "train_mse")
    line("test error (MSE, posterior average)", "test_mse")
    line("readout order parameter Qbar", "order_parameter")
    echo(f"  {'test MSE of the posterior-mean predictor':<44} {extra['test_mse_of_mean']:.5g}")
    echo(f"  {'test classification error (posterior mean)':<44} "
         f"{extra['test_classification_error']:.4f}")
    return {**{k: v for k, v in s.items()}, **extra}


@app.command()
def sample(
    arch: str = typer.Option(..., "--arch", help="Preset name (1hl-erf, fc3-relu, ...) or a "
                             ".json/.toml architecture file."),
    data: str = typer.Option("mnist", "--data", help="Data set (mnist, fashion-mnist, "
                             "cifar10, digits)."),
    n_train: int = typer.Option(500, "--n-train"),
    n_test: int = typer.Option(1000, "--n-test"),
    temperature: float = typer.Option(1e-3, "--temperature", help="Likelihood variance T."),
    steps: int = typer.Option(10000, "--steps", help="Langevin steps per chain (burn-in "
                              "included)."),
    burn_in: int | None = typer.Option(None, "--burn-in", help="Default: steps // 4."),
    thin: int | None = typer.Option(None, "--thin", help="Default: <= 1000 draws per chain."),
    step_size: str = typer.Option("auto", "--step-size", help="'auto' (MALA, adapted in "
                                  "burn-in) or a number."),
    method: str = typer.Option("mala", "--method", help="mala (exact) or ula (Pacelli et "
                               "al.'s unadjusted Langevin)."),
    chains: int = typer.Option(1, "--chains"),
    width: int | None = typer.Option(None, "--width", help="Hidden width (all hidden layers)."),
    labels: str = typer.Option("parity", "--labels", help="parity (+-1) or onehot."),
    reprioritize: bool = typer.Option(False, "--reprioritize/--no-reprioritize",
                                      help="Hron et al. 2022 readout coordinates."),
    seed: int = typer.Option(0, "--seed"),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Directory to save to "
                                           "and resume from (rerun the same command)."),
    checkpoint_every: float = typer.Option(30.0, "--checkpoint-every", help="Seconds."),
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    preprocessing: str = typer.Option("standardize", "--preprocessing"),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Sample the Bayesian posterior of a finite network (Langevin; resumable)."""
    import torch

    from widenets import data as wdata
    from widenets.errors import HyperparameterError, expected
    from widenets.finite.checkpoint import atomic_write
    from widenets.finite.langevin import sample_posterior
    from widenets.finite.sampling_setup import check_settings
    from widenets.presets import architecture

    # every setting is checked before the data are read and the run is announced
    architecture(arch)
    size = step_size if step_size == "auto" else _number("--step-size", step_size)
    check_settings(temperature, steps, size, burn_in, thin, seed, method, chains,
                   checkpoint_every)
    for name, value in (("--width", width), ("--threads", threads)):
        if value is not None and value < 1:
            raise HyperparameterError(expected(name, "a positive int", value))
    if threads is not None:
        torch.set_num_threads(threads)
    dataset = wdata.load(data, n_train, n_test, data_dir=data_dir,
                         preprocessing=preprocessing, seed=seed)
    y_train, y_test = _targets(dataset, labels)
    net = architecture(arch, in_shape=dataset.x_train.shape[1:], n_outputs=y_train.shape[1])
    typer.echo(f"{data}: {n_train} train / {n_test} test, labels {labels}; {arch}"
               + (f" (width {width})" if width else "") + f"; T = {temperature:g}, {method}"
               + (", repriorised" if reprioritize else ""), err=True)
    try:
        samples = sample_posterior(
            net, dataset.x_train, y_train, temperature=temperature, n_steps=steps,
            step_size=size, widths=width, x_test=dataset.x_test, y_test=y_test,
            burn_in=burn_in, thin=thin, seed=seed, reprioritize=reprioritize,
            checkpoint=checkpoint, progress=not quiet, method=method, n_chains=chains,
            checkpoint_every=checkpoint_every)
    except KeyboardInterrupt:
        where = f"; rerun the same command to resume from {checkpoint}" if checkpoint else ""
        typer.echo(f"interrupted{where}.", err=True)
        sys.exit(130)
    summary = _report(samples, _errors(samples, y_train, y_test), typer.echo)
    if checkpoint is not None:
        atomic_write(checkpoint / "samples.pt", lambda f: torch.save(samples.to_dict(), f))
        text = json.dumps(summary, indent=1, default=float).encode()
        atomic_write(checkpoint / "summary.json", lambda f: f.write(text))
        typer.echo(f"saved {os.fspath(checkpoint / 'samples.pt')} and summary.json", err=True)


def _number(option: str, text: str) -> float:
    from widenets.errors import HyperparameterError, expected

    try:
        return float(text)
    except ValueError as err:
        raise HyperparameterError(expected(option, "'auto' or a number", repr(text))) from err
