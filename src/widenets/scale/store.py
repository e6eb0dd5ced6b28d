"""The Zarr store of a tiled kernel job: what the job is, its inputs, its tiles, what is done.

Layout of the Zarr (v3) group::

    attrs["widenets"]   the job: architecture (``net.to_dict()``), inputs' fingerprint,
                        shapes, tile, kernels, dtype, and ``state`` ("creating" or "ready")
    x1, x2              the inputs (x2 only for a rectangular job), read by the workers
    nngp, ntk           float64 (n1, n2) matrices, one chunk per tile
    done                uint16 (tile rows, tile columns), chunk (1, 1): how many times each
                        tile was finished; written after the tile's chunks

Completion is read from ``done`` only, never from the presence of chunks (a chunk may exist
from a tile whose worker died before finishing).  Zarr's local store writes every chunk to a
temporary file and renames it, so a chunk or a flag is either the old or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np
import torch

from widenets.errors import WidenetsError, expected

FORMAT = 1


def fingerprint(x1: torch.Tensor, x2: torch.Tensor | None) -> str:
    """SHA-256 of the inputs' shapes, dtype and values (as the job computes with them)."""
    h = hashlib.sha256()
    for x in (x1, x2):
        if x is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(x.detach().cpu().numpy())
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def job_description(net, x1, x2, *, tile: int, get: tuple[str, ...], dtype: torch.dtype
                    ) -> dict[str, Any]:
    """What defines a job: a store holding a different one refuses to resume."""
    return {
        "format": FORMAT,
        "architecture": net.to_dict(),
        "fingerprint": fingerprint(x1, x2),
        "n1": len(x1),
        "n2": len(x1) if x2 is None else len(x2),
        "symmetric": x2 is None,
        "in_shape": list(x1.shape[1:]),
        "tile": tile,
        "get": list(get),
        "dtype": str(dtype).removeprefix("torch."),
    }


def _differences(stored: dict, wanted: dict) -> list[str]:
    out = []
    for key in ("architecture", "fingerprint", "n1", "n2", "symmetric", "in_shape", "tile",
                "get", "dtype", "format"):
        if json.dumps(stored.get(key), sort_keys=True) != json.dumps(wanted[key], sort_keys=True):
            out.append("inputs" if key == "fingerprint" else key)
    return out


def open_store(path: str | os.PathLike, job: dict, x1: torch.Tensor, x2: torch.Tensor | None):
    """Create the store of ``job`` at ``path``, or open it to resume the same job.

    Raises
    ------
    WidenetsError
        ``path`` holds something else: another job (the message names what differs) or a
        Zarr group that is not a widenets kernel store.
    """
    import zarr

    path = os.fspath(path)
    exists = os.path.exists(path)
    if exists and not os.path.isdir(path):
        raise WidenetsError(f"`store` must be a directory for a Zarr store; {path} is a file.")
    try:
        group = zarr.open_group(path, mode="a")
    except OSError as err:
        raise WidenetsError(expected("store", "a directory that can be created or resumed",
                                     f"{path} ({err.strerror or err})")) from err
    stored = group.attrs.get("widenets")
    if stored is None and exists and (list(group.keys()) or dict(group.attrs)):
        raise WidenetsError(f"{path} is a Zarr group but not a widenets kernel store; choose "
                            "another `store` path.")
    if stored is not None:
        diff = _differences(stored, job)
        if diff:
            raise WidenetsError(
                f"the store {path} holds a different job ({', '.join(diff)} differ); use "
                "another `store` path, or delete it to start again.")
        if stored.get("state") == "ready":
            return group
    group.attrs["widenets"] = {**job, "state": "creating"}
    _create_arrays(group, job, x1, x2)
    group.attrs["widenets"] = {**job, "state": "ready"}
    return group


def _create_arrays(group, job: dict, x1: torch.Tensor, x2: torch.Tensor | None) -> None:
    tile, n1, n2 = job["tile"], job["n1"], job["n2"]
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            continue
        a = x.detach().cpu().numpy()
        arr = group.create_array(name, shape=a.shape, chunks=(tile, *a.shape[1:]),
                                 dtype=a.dtype, overwrite=True)
        arr[...] = a
    for name in job["get"]:
        group.create_array(name, shape=(n1, n2), chunks=(tile, tile), dtype="float64",
                           fill_value=np.nan, compressors=None, overwrite=True)
    rows, cols = -(-n1 // tile), -(-n2 // tile)
    group.create_array("done", shape=(rows, cols), chunks=(1, 1), dtype="uint16", fill_value=0,
                       overwrite=True)


def finished(group, i: int | None = None, j: int | None = None):
    """How many times each tile (or tile ``(i, j)``) was finished (0: to do)."""
    return group["done"][...] if i is None else int(group["done"][i, j])


def write_tile(group, i: int, j: int, values: dict[str, np.ndarray], symmetric: bool) -> None:
    """Write tile ``(i, j)`` (and its mirror image for a symmetric job), then mark it done."""
    tile = group.attrs["widenets"]["tile"]
    rows = slice(i * tile, i * tile + next(iter(values.values())).shape[0])
    cols = slice(j * tile, j * tile + next(iter(values.values())).shape[1])
    for name, value in values.items():
        group[name][rows, cols] = value
        if symmetric and i != j:
            group[name][cols, rows] = value.T
    done = group["done"]
    done[i, j] = int(done[i, j]) + 1
