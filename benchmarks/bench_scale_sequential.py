"""(d) The tiled job on 1 and then 2 Dask workers, one cluster at a time (issue 7).

``bench_scale.py`` keeps both clusters up and alternates their repetitions, which shares a
busy machine's load fairly between them; on an idle machine the idle cluster's processes cost
the running one (its 2-worker speed-up measured 1.13x).  This script runs each cluster alone:
start it, time a cold job (workers compile their kernels) and a warm one, close it.

    python benchmarks/bench_scale_sequential.py --n 160 --tile 40
"""

import argparse
import os
import shutil
import tempfile
import time

from distributed import Client, LocalCluster

import widenets as wn
from widenets.data import load
from widenets.presets import architecture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=160)
    parser.add_argument("--tile", type=int, default=40)
    args = parser.parse_args()
    x = load("digits", args.n, 10, seed=0).x_train
    net = architecture("cnn-gap-8")
    pairs = args.n * (args.n + 1) // 2
    print(f"load average {os.getloadavg()[0]:.2f}; cnn-gap-8 on {args.n} digits, float64, "
          f"tiles {args.tile}: {pairs:,} pairs")
    times = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            for run in ("cold", "warm"):
                store = tempfile.mkdtemp(suffix=".zarr")
                start = time.perf_counter()
                wn.scale.kernel_matrix(net, x, store=store, tile=args.tile, client=client,
                                       progress=False).result()
                times[workers, run] = time.perf_counter() - start
                shutil.rmtree(store)
    print("workers  cold s  warm s  speed-up (cold / warm)")
    for workers in (1, 2):
        print(f"{workers:7d}  {times[workers, 'cold']:6.1f}  {times[workers, 'warm']:6.1f}  "
              f"{times[1, 'cold'] / times[workers, 'cold']:.2f}x / "
              f"{times[1, 'warm'] / times[workers, 'warm']:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
