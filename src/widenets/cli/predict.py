"""``widenets predict``: test accuracy of an infinitely wide network (NNGP and NTK)."""

from __future__ import annotations

import math
import time

import typer

from widenets.cli import app, options
from widenets.errors import HyperparameterError, expected


def flatten_if_first(net, *xs):
    """Flatten the inputs when the network starts with ``Flatten``: the kernels are the
    same (the mean over positions of per-position channel means is the mean over all
    features), but flat inputs carry one number per pair instead of one per position."""
    from widenets.layers import Flatten, Serial

    first = net.layers[0] if isinstance(net, Serial) and net.layers else net
    if isinstance(first, Flatten):
        return tuple(x.reshape(len(x), -1) for x in xs)
    return xs


@app.command()
def predict(
    arch: str = options.ARCH,
    data: str = options.DATA,
    n_train: int = typer.Option(1000, "--n-train", help="Training examples (class-balanced)."),
    n_test: int = typer.Option(1000, "--n-test", help="Test examples (class-balanced)."),
    data_dir: str = options.DATA_DIR,
    preprocessing: str = options.PREPROCESSING,
    downsample: int = typer.Option(1, "--downsample", help="Average-pool images by this "
                                   "factor first (cheaper convolutional kernels)."),
    diag_reg: float = typer.Option(1e-4, "--diag-reg", help="Diagonal regularisation, "
                                   "relative to the mean diagonal of the train kernel."),
    t: float = typer.Option(math.inf, "--t", help="Training time (inf: converged)."),
    seed: int = typer.Option(0, "--seed", help="Which examples of each class are used."),
    block_size: int = typer.Option(128, "--block-size", help="Inputs per side of a kernel "
                                   "tile."),
) -> None:
    """Print the test accuracy and error of the NNGP and NTK of ARCH on a data set."""

    from tqdm import tqdm

    import widenets.data
    from widenets.predict import accuracy, classify_from_kernels, pair_count, train_test_kernels
    from widenets.presets import architecture

    for name, value in (("--n-train", n_train), ("--n-test", n_test),
                        ("--block-size", block_size)):
        if value < 1:
            raise HyperparameterError(expected(name, "a positive int", value))
    if not (math.isfinite(diag_reg) and diag_reg >= 0):  # checked before hours of kernels
        raise HyperparameterError(expected("--diag-reg", "a finite number >= 0", diag_reg))
    if not t >= 0:
        raise HyperparameterError(expected("--t", "a time >= 0 (inf: converged)", t))
    net = architecture(arch, n_outputs=10)  # a bad name fails before any data is read
    ds = widenets.data.load(data, n_train, n_test, data_dir=data_dir,
                            preprocessing=preprocessing, seed=seed, downsample=downsample)
    net = architecture(net, in_shape=tuple(ds.x_train.shape[1:]))
    x_train, x_test = flatten_if_first(net, ds.x_train, ds.x_test)
    typer.echo(f"{ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test, input "
               f"{tuple(ds.x_train.shape[1:])}, {ds.preprocessing}")
    typer.echo(f"architecture: {arch}; diag_reg={diag_reg:g} (relative), t={t:g}")
    start = time.perf_counter()
    with tqdm(total=pair_count(len(ds.x_train), len(ds.x_test)), unit="pair", unit_scale=True,
              desc="kernels", leave=False) as bar:
        k_dd, k_td = train_test_kernels(net, x_train, x_test, block_size=block_size,
                                        callback=bar.update)
    typer.echo(f"kernels computed in {time.perf_counter() - start:.1f} s")
    for get in ("nngp", "ntk"):
        result = classify_from_kernels(k_dd, ds.y_train, k_td, n_classes=ds.n_classes, get=get,
                                       t=t, diag_reg=diag_reg)
        acc = accuracy(result.labels, ds.y_test)
        typer.echo(f"{get.upper():<5} accuracy {acc:.4f}  error {1 - acc:.4f}")

