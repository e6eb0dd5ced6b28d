"""Run a tiled kernel job on Dask distributed, tile by tile, resumably.

Each tile is one Dask task.  A worker opens the store, reads the inputs of its tile, computes
the tile with the kernel engine, writes its chunk(s) and then its ``done`` flag
(:mod:`widenets.scale.store`).  The client only submits tasks and shows progress, so killing
workers (Dask reruns their tasks) or the client (rerun the same call) loses at most the
tiles being computed.  Workers run one torch thread each by default: one process per core
scales better than threads for these elementwise-bound kernels.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
import uuid

import numpy as np
import torch

from widenets.errors import WidenetsError
from widenets.scale import store as stores
from widenets.scale.plan import TilePlan

_log = logging.getLogger("widenets")


@dataclasses.dataclass
class TiledKernel:
    """Kernel matrices of a finished job, as Zarr arrays (``np.asarray(k.nngp)`` loads one)."""

    nngp: object | None
    ntk: object | None


@functools.lru_cache(maxsize=4)
def _worker_job(path: str, fingerprint: str):
    """Per worker process: the store, the network and the inputs of a job (opened once)."""
    import zarr

    from widenets.layers.base import Layer

    group = zarr.open_group(path, mode="r+")
    meta = group.attrs["widenets"]
    if meta["fingerprint"] != fingerprint:
        raise WidenetsError(f"the store {path} changed while the job was running.")
    net = Layer.from_dict(meta["architecture"])
    x1 = group["x1"]
    return group, meta, net, x1, (x1 if meta["symmetric"] else group["x2"])


def run_tile(path: str, fingerprint: str, i: int, j: int, *, block: int, threads: int,
             device: str | None) -> dict:
    """Compute tile ``(i, j)`` and write it (runs on a Dask worker)."""
    from widenets.kernels.compute import compute_kernel

    start = time.perf_counter()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(threads)
    group, meta, net, x1, x2 = _worker_job(path, fingerprint)
    if stores.finished(group, i, j):  # a worker killed after finishing it, before reporting
        return {"tile": (i, j), "skipped": True, "pid": os.getpid()}
    tile, symmetric = meta["tile"], meta["symmetric"]
    a = torch.from_numpy(x1[i * tile:(i + 1) * tile]).to(device)
    b = None if symmetric and i == j else torch.from_numpy(x2[j * tile:(j + 1) * tile]).to(device)
    dtype = getattr(torch, meta["dtype"])
    k = compute_kernel(net, a, b, get=tuple(meta["get"]), dtype=dtype, batch_size=block)
    values = {name: getattr(k, name).to("cpu", torch.float64).numpy() for name in meta["get"]}
    stores.write_tile(group, i, j, values, symmetric)
    return {"tile": (i, j), "skipped": False, "seconds": time.perf_counter() - start,
            "pid": os.getpid()}


class KernelJob:
    """A kernel matrix computed tile by tile into a Zarr store (see :func:`kernel_matrix`).

    Attributes
    ----------
    plan : TilePlan
        Tiles, memory and cost.
    store : str
        Path of the Zarr store.
    computed : list of (int, int)
        Tiles computed by the last :meth:`result` call.
    skipped : list of (int, int)
        Tiles already finished when it started.
    """

    def __init__(self, *, store: str, group, plan: TilePlan, fingerprint: str, client,
                 n_workers: int | None, progress: bool, threads: int, device: str | None):
        self.store, self.plan, self.fingerprint = store, plan, fingerprint
        self._group, self._client, self._n_workers = group, client, n_workers
        self._progress, self._threads, self._device = progress, threads, device
        self.computed: list[tuple[int, int]] = []
        self.skipped: list[tuple[int, int]] = []

    def status(self) -> tuple[int, int]:
        """``(finished tiles, all tiles)``."""
        done = stores.finished(self._group)
        tiles = self.plan.tiles()
        return sum(done[t] > 0 for t in tiles), len(tiles)

    def result(self) -> TiledKernel:
        """Compute the tiles not yet finished (resuming), then return the matrices."""
        done = stores.finished(self._group)
        tiles = self.plan.tiles()
        todo = [t for t in tiles if done[t] == 0]
        self.skipped = [t for t in tiles if done[t] > 0]
        self.computed = []
        if todo:
            self._run(todo, len(tiles))
        meta = self._group.attrs["widenets"]
        return TiledKernel(**{name: (self._group[name] if name in meta["get"] else None)
                              for name in ("nngp", "ntk")})

    def _run(self, todo: list[tuple[int, int]], total: int) -> None:
        from distributed import as_completed
        from tqdm import tqdm

        client, close = _connect(self._client, self._n_workers)
        token, futures = uuid.uuid4().hex[:8], []
        try:
            for i, j in todo:
                futures.append(client.submit(
                    run_tile, self.store, self.fingerprint, i, j, block=self.plan.block,
                    threads=self._threads, device=self._device, retries=1,
                    key=f"widenets-tile-{i}-{j}-{token}"))
            with tqdm(total=total, initial=total - len(todo), unit="tile", desc="tiles",
                      disable=not self._progress, smoothing=0.1) as bar:
                for future in as_completed(futures):
                    record = future.result()
                    if not record["skipped"]:
                        self.computed.append(tuple(record["tile"]))
                    bar.update(1)
        except BaseException:  # an error, or Ctrl-C: stop the tiles not yet started
            for future in futures:
                future.cancel()
            raise
        finally:
            if close:
                cluster = getattr(client, "cluster", None)
                client.close()
                if cluster is not None:
                    cluster.close()


def _connect(client, n_workers: int | None):
    """``(client, close_it)``: the given Client, one for a scheduler address, or a local
    cluster of process workers with one thread each."""
    from distributed import Client, LocalCluster

    if client is None:
        cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
        return Client(cluster), True
    if isinstance(client, str):
        return Client(client), True
    return client, False


def worker_memory(client, n_workers: int | None) -> int:
    """Bytes each worker may use for one tile: half its Dask memory limit (or of this
    machine's available memory shared among the local workers)."""
    from widenets.kernels.compute import available_memory

    limits = []
    if client is not None and not isinstance(client, str):
        limits = [w.get("memory_limit") or 0 for w in
                  client.scheduler_info().get("workers", {}).values()]
    if limits and min(limits) > 0:
        return int(0.5 * min(limits))
    workers = n_workers or os.cpu_count() or 1
    return int(0.5 * available_memory() / workers)


def as_numpy(k: TiledKernel) -> dict[str, np.ndarray]:
    """Load the matrices of a finished job into memory."""
    return {name: np.asarray(getattr(k, name)[...]) for name in ("nngp", "ntk")
            if getattr(k, name) is not None}
