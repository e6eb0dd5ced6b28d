"""Kernels at data-set scale: tiled, stored in Zarr, computed on Dask, resumable.

>>> import widenets as wn                                              # doctest: +SKIP
>>> job = wn.scale.kernel_matrix(net, x_train, store="kernels.zarr")   # doctest: +SKIP
>>> k = job.result()        # tiles computed on a local Dask cluster; rerun to resume
>>> k.ntk[:5, :5]           # a Zarr array

Dask (``distributed``) and Zarr are imported when a job runs, not with :mod:`widenets`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from widenets.scale.plan import TilePlan, flops_per_pair, plan_tiles
from widenets.scale.runner import KernelJob, TiledKernel, as_numpy

__all__ = ["KernelJob", "TilePlan", "TiledKernel", "as_numpy", "flops_per_pair",
           "kernel_matrix", "plan_tiles"]


def kernel_matrix(net, x1, x2=None, store: str | os.PathLike = "kernels.zarr", tile: int = 512,
                  get: str | Sequence[str] = ("nngp", "ntk"), client=None,
                  dtype: torch.dtype | None = None, progress: bool = True, *,
                  n_workers: int | None = None, memory: int | None = None,
                  threads: int = 1, device: str | None = None) -> KernelJob:
    """A kernel matrix as a resumable job: tiles computed on Dask, stored in Zarr.

    The matrix is cut into ``tile x tile`` tiles (one Zarr chunk and one Dask task each; for
    ``x2=None`` only the upper triangle of tiles is computed and mirrored).  Each finished
    tile is recorded in the store, so calling this again with the same arguments and then
    :meth:`KernelJob.result` computes only the tiles not yet finished.  The store records
    the architecture and a fingerprint of the inputs and refuses to resume a different job.

    Parameters
    ----------
    net : Layer
        The network (any widenets architecture with a flat output).
    x1, x2 : Tensor or array, shape ``(n, *in_shape)``
        Inputs; ``x2=None`` means ``x1`` with itself.
    store : path
        Directory of the Zarr store (created if missing).
    tile : int
        Side of a tile in inputs.
    get : {"nngp", "ntk"} or a sequence of them
        Kernels to compute (stored as float64).
    client : dask.distributed.Client, str or None
        A Client, a scheduler address (``"tcp://host:8786"``), or None for a local cluster
        of ``n_workers`` process workers (default: one per core) with one thread each.
    dtype : torch.dtype, optional
        Compute dtype, float64 (default) or float32 (sums accumulated in float64).
    progress : bool
        Show a progress bar (tiles done, rate, time left).
    n_workers : int, optional
        Workers of the local cluster (ignored when ``client`` is given).
    memory : int, optional
        Bytes one tile may use on a worker; default half the worker's memory limit.
    threads : int
        torch threads per task.
    device : str, optional
        Device of the tile computations; default "cuda" when available, else "cpu".

    Returns
    -------
    KernelJob
        ``.plan`` (tiles, memory, FLOPs); ``.result()`` computes and returns
        :class:`TiledKernel` of Zarr arrays.

    Raises
    ------
    ShapeError, HyperparameterError, MemoryPlanError
        Bad inputs, arguments, or a tile that cannot fit in ``memory``.
    WidenetsError
        ``store`` holds a different job or something that is not a kernel store.
    """
    from widenets.errors import HyperparameterError, ShapeError, expected
    from widenets.scale import store as stores
    from widenets.scale.runner import worker_memory
    from widenets.validation import as_inputs, check_choice, check_dtype

    get = (get,) if isinstance(get, str) else tuple(get)
    if not get:
        raise HyperparameterError(expected("get", "'nngp', 'ntk' or both", "nothing"))
    for g in get:
        check_choice("get", g, ("nngp", "ntk"))
    dtype = check_dtype(dtype)
    for name, value in (("threads", threads), ("n_workers", n_workers), ("memory", memory)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise HyperparameterError(expected(name, "a positive int", repr(value)))
    x1 = as_inputs("x1", x1, dtype).cpu()
    x2 = None if x2 is None else as_inputs("x2", x2, dtype, like=x1).cpu()
    in_shape = tuple(x1.shape[1:])
    out = net.out_shape(in_shape)
    if len(out) != 1 or isinstance(out[0], tuple):
        raise ShapeError(expected("network output", "flat features (end in Flatten, "
                                  "GlobalAvgPool or Dense on flat inputs)", out))
    budget = memory or worker_memory(client, n_workers)
    plan = plan_tiles(net, in_shape, len(x1), None if x2 is None else len(x2), tile=tile,
                      get=get, dtype=dtype, memory=budget)
    job = stores.job_description(net, x1, x2, tile=plan.tile, get=get, dtype=dtype)
    path = os.fspath(store)
    group = stores.open_store(path, job, x1, x2)
    return KernelJob(store=path, group=group, plan=plan, fingerprint=job["fingerprint"],
                     client=client, n_workers=n_workers, progress=progress, threads=threads,
                     device=device)
