"""``widenets kernel``: a data set's kernel matrix, tiled into a Zarr store on Dask."""

from __future__ import annotations

import time

import typer

from widenets.cli import app, options


@app.command()
def kernel(
    arch: str = options.ARCH,
    data: str = options.DATA,
    n: int = typer.Option(..., "--n", help="Training images (class-balanced); the matrix is "
                          "n x n."),
    store: str = typer.Option(..., "--store", help="Zarr store directory (created, or "
                              "resumed when it holds the same job)."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address "
                                  "(tcp://host:8786); default: a local cluster."),
    workers: int = typer.Option(None, "--workers", help="Workers of the local cluster "
                                "(default: one per core)."),
    tile: int = typer.Option(512, "--tile", help="Side of a tile (one Zarr chunk, one task)."),
    get: str = typer.Option("nngp,ntk", "--get", help="nngp, ntk or nngp,ntk."),
    dtype: str = typer.Option("float64", "--dtype", help="float64 or float32 (sums in "
                              "float64)."),
    data_dir: str = options.DATA_DIR,
    preprocessing: str = options.PREPROCESSING,
    downsample: int = typer.Option(1, "--downsample", help="Average-pool images by this "
                                   "factor first."),
    seed: int = typer.Option(0, "--seed", help="Which images of each class are used."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
) -> None:
    """Compute the NNGP/NTK matrix of ARCH on N images of a data set, tile by tile."""
    import torch

    import widenets.data
    from widenets.errors import HyperparameterError, expected
    from widenets.presets import architecture
    from widenets.scale import kernel_matrix, plan_tiles
    from widenets.scale.runner import worker_memory

    if n < 1:
        raise HyperparameterError(expected("--n", "a positive int", n))
    kinds = tuple(g.strip() for g in get.split(",") if g.strip())
    if dtype not in ("float64", "float32"):
        raise HyperparameterError(expected("--dtype", "float64 or float32", repr(dtype)))
    torch_dtype = getattr(torch, dtype)
    net = architecture(arch)  # a bad name fails before any data is read
    ds = widenets.data.load(data, n, 1, data_dir=data_dir, preprocessing=preprocessing,
                            seed=seed, downsample=downsample)
    x = ds.x_train
    net = architecture(net, in_shape=tuple(x.shape[1:]))
    typer.echo(f"{ds.name}: {len(x)} images {tuple(x.shape[1:])}, {ds.preprocessing}; "
               f"architecture {arch}")
    where = scheduler or f"a local cluster of {workers or 'one worker per core'}"
    if dry_run:
        plan = plan_tiles(net, tuple(x.shape[1:]), len(x), None, tile=tile, get=kinds,
                          dtype=torch_dtype, memory=worker_memory(None, workers))
        typer.echo(plan.describe())
        typer.echo(f"dry run: nothing computed (would run on {where}, store {store})")
        return
    job = kernel_matrix(net, x, store=store, tile=tile, get=kinds, client=scheduler,
                        dtype=torch_dtype, n_workers=workers)
    typer.echo(job.plan.describe())
    done, total = job.status()
    typer.echo(f"store {store}: {done} of {total} tiles already finished; running on {where}")
    start = time.perf_counter()
    job.result()
    seconds = time.perf_counter() - start
    rate = sum(job.plan.pairs(i, j) for i, j in job.computed) / max(seconds, 1e-9)
    typer.echo(f"done: {len(job.computed)} tiles computed in {seconds:.1f} s "
               f"({rate:,.0f} pairs/s), {len(job.skipped)} resumed; kernels in {store}")
