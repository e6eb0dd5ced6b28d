"""(d) The tiled kernel job (widenets.scale) on 1 and 2 Dask workers.

``cnn-gap-8`` on n scikit-learn digits (8x8), x1 with itself, tiles of ``--tile`` (n a
multiple of it, so all full tiles are alike), float64, a LocalCluster of process workers with
one torch thread each.  Each worker is warmed up first (imports, compilation of the tile's
kernels) by computing one diagonal and one off-diagonal tile's worth of pairs, so the timed
part is the job itself: submitting the tiles, computing, writing the Zarr chunks.  Reported:
median seconds of ``job.result()`` over repetitions (fresh stores), speed-up of 2 workers
over 1, and pairs per second.  On a machine with 2 cores the speed-up also measures how much
of the second core the other users leave.

    .venv/bin/python benchmarks/bench_scale.py [--n 240] [--tile 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import _kernel_bench as kb

import widenets.data
import widenets.scale as scale
from widenets.presets import architecture


def _warm(net, x, tile, block):
    """On a worker: compile and cache what the job's tiles will run."""
    from widenets.kernels.compute import compute_kernel

    torch.set_num_threads(1)
    compute_kernel(net, x[:tile], batch_size=block)
    compute_kernel(net, x[:tile], x[tile:2 * tile], batch_size=block)
    return True


def run(workers: int, net, x, tile: int, repeats: int, tmp: str) -> list[float]:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    times = []
    try:
        plan = scale.kernel_matrix(net, x, store=f"{tmp}/plan.zarr", tile=tile,
                                   client=client, progress=False).plan
        client.run(_warm, net, x, tile, plan.block)
        for r in range(repeats):
            path = f"{tmp}/w{workers}-{r}.zarr"
            job = scale.kernel_matrix(net, x, store=path, tile=tile, client=client,
                                      progress=False)
            start = time.perf_counter()
            job.result()
            times.append(time.perf_counter() - start)
            assert len(job.computed) == len(plan.tiles())
            shutil.rmtree(path)
    finally:
        client.close()
        cluster.close()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=240)
    parser.add_argument("--tile", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(kb.load_note())
    net = architecture("cnn-gap-8")
    x = widenets.data.load("digits", args.n, 1).x_train.to(torch.float64)
    pairs = args.n * (args.n + 1) // 2
    rows, medians = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            times = run(workers, net, x, args.tile, args.repeats, tmp)
            medians[workers] = statistics.median(times)
            rows.append([str(workers), f"{medians[workers]:.2f}",
                         " ".join(f"{t:.2f}" for t in times), f"{pairs / medians[workers]:,.0f}",
                         f"{medians[1] / medians[workers]:.2f}x"])
            print(kb.load_note(), flush=True)
    grid = args.n // args.tile
    print(f"job: cnn-gap-8 on {args.n} digits (8x8), float64, tiles {args.tile} x {args.tile}: "
          f"{grid * (grid + 1) // 2} tiles, {pairs:,} pairs")
    print(kb.table(rows, ["workers", "median s", "runs s", "pairs/s", "speed-up"]))


if __name__ == "__main__":
    main()
