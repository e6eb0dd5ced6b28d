"""(d) The tiled kernel job (widenets.scale) on 1 and 2 Dask workers.

``cnn-gap-8`` on n scikit-learn digits (8x8), x1 with itself, tiles of ``--tile`` (n a
multiple of it, so all full tiles are alike), float64, a LocalCluster of process workers with
one torch thread each.  Each worker is warmed up first (imports, compilation of the tile's
kernels) by computing one diagonal and one off-diagonal tile's worth of pairs, so the timed
part is the job itself: submitting the tiles, computing, writing the Zarr chunks.  Reported:
median seconds of ``job.result()`` over repetitions (fresh stores; the two clusters run
alternately), speed-up of 2 workers over 1, pairs per second, and the CPU seconds the workers
spent (summed; efficiency = CPU seconds of 1 worker over those of 2, below 1 where running in
parallel adds work).  On a machine with 2 cores the wall-clock speed-up also measures how
much of the second core the other users leave.

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


def start(workers: int, net, x, tile: int, tmp: str):
    """A LocalCluster of ``workers`` process workers, warmed up, and its client."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    plan = scale.kernel_matrix(net, x, store=f"{tmp}/plan-{workers}.zarr", tile=tile,
                               client=client, progress=False).plan
    client.run(_warm, net, x, tile, plan.block)
    return cluster, client, plan


def _cpu() -> float:
    return time.process_time()


def run_once(client, plan, net, x, tile: int, path: str) -> tuple[float, float]:
    """Wall seconds of the job and CPU seconds its workers spent (all workers together)."""
    job = scale.kernel_matrix(net, x, store=path, tile=tile, client=client, progress=False)
    before = sum(client.run(_cpu).values())
    begin = time.perf_counter()
    job.result()
    seconds = time.perf_counter() - begin
    cpu = sum(client.run(_cpu).values()) - before
    assert len(job.computed) == len(plan.tiles())
    shutil.rmtree(path)
    return seconds, cpu


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
    rows, medians, times = [], {}, {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        clusters = {w: start(w, net, x, args.tile, tmp) for w in (1, 2)}
        try:
            # repetitions alternate between the two clusters, so that the load of the other
            # users of the machine falls on both alike
            for r in range(args.repeats):
                for w, (_, client, plan) in clusters.items():
                    times[w].append(run_once(client, plan, net, x, args.tile,
                                             f"{tmp}/w{w}-{r}.zarr"))
                print(kb.load_note(), flush=True)
        finally:
            for cluster, client, _ in clusters.values():
                client.close()
                cluster.close()
    cpus = {}
    for w in (1, 2):
        medians[w] = statistics.median(t for t, _ in times[w])
        cpus[w] = statistics.median(c for _, c in times[w])
        rows.append([str(w), f"{medians[w]:.2f}", " ".join(f"{t:.2f}" for t, _ in times[w]),
                     f"{pairs / medians[w]:,.0f}", f"{medians[1] / medians[w]:.2f}x",
                     f"{cpus[w]:.2f}", f"{cpus[1] / cpus[w]:.2f}"])
    grid = args.n // args.tile
    print(f"job: cnn-gap-8 on {args.n} digits (8x8), float64, tiles {args.tile} x {args.tile}: "
          f"{grid * (grid + 1) // 2} tiles, {pairs:,} pairs")
    print(kb.table(rows, ["workers", "median s", "runs s", "pairs/s", "speed-up",
                          "worker CPU s", "CPU efficiency"]))
    print(f"2 workers on 2 free cores would give {2 * cpus[1] / cpus[2]:.2f}x (twice the CPU "
          "efficiency: the work the second worker adds); the wall-clock speed-up also "
          "depends on the share of the cores the other users leave")


if __name__ == "__main__":
    main()
