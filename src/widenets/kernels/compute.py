"""Run a network's kernel rules on a batch of inputs: input kernel, memory plan, blocks.

The input kernel is ``K0(x, x')[p, p'] = sum_c x_c(p) x'_c(p') / C``, the mean over channels
(kernels.md, "Objects"); the input NTK is zero.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch

from widenets.errors import InputValueError, MemoryPlanError, ShapeError, expected
from widenets.kernels.gap import gap_kernel, gap_plan
from widenets.kernels.state import Kernel, KernelState
from widenets.validation import as_inputs, check_choice, check_dtype

# live tensors per pair during a layer: nngp, ntk, their results and temporaries
_LIVE_ARRAYS = 6
# block side for flat inputs paired with themselves: only the upper triangle of blocks is
# computed (about half the Gram and elementwise work of the whole grid) and each block's
# arrays stay in the caches; 250-1000 are within 15% of each other at n = 2000
# (benchmarks/bench_kernels_mlp.py, issue 7 notes)
FLAT_BLOCK = 512


def compute_kernel(net, x1, x2=None, *, get: str | Sequence[str] = ("nngp", "ntk"),
                   dtype: torch.dtype | None = None, batch_size: int | None = None) -> Kernel:
    """See :meth:`widenets.layers.base.Layer.kernel`."""
    get = (get,) if isinstance(get, str) else tuple(get)
    for g in get:
        check_choice("get", g, ("nngp", "ntk"))
    dtype = check_dtype(dtype)
    x1 = as_inputs("x1", x1, dtype)
    x2 = None if x2 is None else as_inputs("x2", x2, dtype, like=x1)
    in_shape = tuple(x1.shape[1:])
    out_shape = net.out_shape(in_shape)
    if isinstance(out_shape[0], tuple):
        raise ShapeError(expected("network output", "a single flow (end branches in FanInSum)",
                                  f"{len(out_shape)} branches"))
    full = bool(net.needs_full(False, in_shape))
    n1, n2 = len(x1), len(x1) if x2 is None else len(x2)
    with_ntk = "ntk" in get
    gap = gap_plan(net, in_shape) if full else None
    if gap is not None:  # conv stack + global average pooling: fused, in cache-sized chunks
        _check_batch_size(batch_size)  # accepted; this path bounds its own working memory
        nngp, ntk = gap_kernel(gap, x1, x2, with_ntk)
    else:
        block = plan_blocks(in_shape, n1, n2, full, dtype, batch_size)
        if batch_size is None and x2 is None and len(in_shape) == 1:
            block = min(block, FLAT_BLOCK)
        if block >= max(n1, n2):
            nngp, ntk = _block(net, x1, x2, full, with_ntk)
        else:
            nngp, ntk = _blocked(net, x1, x2, full, with_ntk, block)
    for name, value in (("nngp", nngp), ("ntk", ntk)):
        # one pass (a sum) in the common case; the elementwise check only if it is not finite
        if value is not None and not torch.isfinite(value.sum()) \
                and not torch.isfinite(value).all():
            raise InputValueError(
                f"the {name} kernel overflowed to inf/NaN: the pre-activation variances grow "
                "too large for this network (reduce weight_std or the depth; Exp and "
                "Gaussian activations grow fastest).")
    return Kernel(nngp=nngp if "nngp" in get else None, ntk=ntk if with_ntk else None)


def plan_blocks(in_shape: tuple[int, ...], n1: int, n2: int, full: bool, dtype: torch.dtype,
                batch_size: int | None) -> int:
    """Block size (inputs per side) whose working memory fits; raise if none was given and
    the whole computation does not fit."""
    positions = math.prod(in_shape[1:])
    entries = positions**2 if full else positions
    itemsize = torch.finfo(dtype).bits // 8
    per_pair = entries * itemsize * _LIVE_ARRAYS
    available = available_memory()
    if batch_size is not None:
        _check_batch_size(batch_size)
        need = batch_size**2 * per_pair
        if need > 0.8 * available:
            raise MemoryPlanError(
                f"`batch_size`={batch_size} needs {need / 2**30:.2f} GiB per block but "
                f"{available / 2**30:.2f} GiB are available; use batch_size="
                f"{_fitting_block(per_pair, available)}.")
        return batch_size
    need = n1 * n2 * per_pair
    if need > 0.8 * available:
        what = (f"{n1} x {n2} input pairs x {entries} position pairs"
                + (" (global average pooling needs every pair of positions)" if full else ""))
        raise MemoryPlanError(
            f"this kernel needs about {need / 2**30:.1f} GiB ({what}) but "
            f"{available / 2**30:.1f} GiB are available: pass batch_size="
            f"{_fitting_block(per_pair, available)} to compute it in blocks, or tile it on disk "
            "with widenets.scale.kernel_matrix.")
    return max(n1, n2)


def _check_batch_size(batch_size) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise MemoryPlanError(expected("batch_size", "a positive int", repr(batch_size)))


def _fitting_block(per_pair: int, available: int) -> int:
    return max(1, int(math.sqrt(0.5 * available / per_pair)))


def available_memory() -> int:
    """Bytes of memory available to this process (Linux ``MemAvailable``)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _blocked(net, x1, x2, full, with_ntk, block):
    n1 = len(x1)
    n2 = n1 if x2 is None else len(x2)
    nngp = x1.new_empty(n1, n2)
    ntk = x1.new_empty(n1, n2) if with_ntk else None
    for i in range(0, n1, block):
        j_start = i if x2 is None else 0
        for j in range(j_start, n2, block):
            a = x1[i:i + block]
            if x2 is None and i == j:
                k, t = _block(net, a, None, full, with_ntk)
            else:
                k, t = _block(net, a, (x1 if x2 is None else x2)[j:j + block], full, with_ntk)
            for out, value in ((nngp, k), (ntk, t)):
                if out is None:
                    continue
                out[i:i + block, j:j + block] = value
                if x2 is None and i != j:
                    out[j:j + block, i:i + block] = value.transpose(0, 1)
    return nngp, ntk


def _block(net, x1, x2, full, with_ntk):
    state = input_state(x1, x2, full, with_ntk)
    out = net.kernel_step(state)
    nngp, ntk = _output(out, out.nngp), (None if out.ntk is None else _output(out, out.ntk))
    if out.index is None:
        if x2 is None:  # flat inputs keep the whole grid (no gathers); make it exactly symmetric
            nngp, ntk = _mirror(nngp), (None if ntk is None else _mirror(ntk))
        return nngp, ntk
    return _symmetric(out, nngp, len(x1)), (None if ntk is None else _symmetric(out, ntk, len(x1)))


def _mirror(t: torch.Tensor, block: int = 128) -> torch.Tensor:
    """The upper triangle of ``t`` and its mirror image (a new tensor).

    Copied in bands of ``block`` rows, so that the transposed reads stay in cache: 5x fewer
    CPU seconds than ``triu(t) + triu(t, 1).T`` for one 2000 x 2000 matrix alone; in the
    whole fc3-relu NNGP + NTK at n = 2000 (float64, compiled) it saves about 12% (A/B in one
    process, median CPU seconds 0.41 against 0.47)."""
    out = t.clone()
    for i in range(0, len(t), block):
        out[i:i + block, :i] = t[:i, i:i + block].transpose(0, 1)
        diag = t[i:i + block, i:i + block]
        out[i:i + block, i:i + block] = torch.triu(diag) + torch.triu(diag, 1).transpose(0, 1)
    return out


def _output(state: KernelState, t: torch.Tensor) -> torch.Tensor:
    """Same-position covariances if the output still has spatial axes."""
    if state.full:
        b = state.batch_ndim
        for _ in state.spatial:
            t = torch.diagonal(t, dim1=b, dim2=b + 1)
    return t


def _symmetric(state: KernelState, values: torch.Tensor, n: int) -> torch.Tensor:
    i, j = state.index
    out = values.new_empty(n, n, *values.shape[1:])
    out[i, j] = values
    out[j, i] = values
    return out


def input_state(x1: torch.Tensor, x2: torch.Tensor | None, full: bool,
                with_ntk: bool) -> KernelState:
    """The kernel of the inputs themselves (mean over channels), zero NTK."""
    channels = x1.shape[1]
    spatial = tuple(x1.shape[2:])
    grid = _pair_kernel(x1, x1 if x2 is None else x2, full) / channels
    index = None
    if x2 is None and spatial:  # images: compute each unordered pair once
        index = tuple(torch.triu_indices(len(x1), len(x1), device=x1.device))
        grid = grid[index[0], index[1]]
    # flat x1 with itself: the variances are the grid's diagonal itself, so that an input
    # paired with itself has correlation exactly 1 (a separate sum rounds differently, and
    # in float32 the angle's square root turns that into 1e-3 errors on the diagonal)
    cov1 = torch.diagonal(grid).clone() if x2 is None and not spatial else \
        _self_kernel(x1, full) / channels
    return KernelState(
        nngp=grid, ntk=torch.zeros_like(grid) if with_ntk else None,
        cov1=cov1,
        cov2=None if x2 is None else _self_kernel(x2, full) / channels,
        index=index, spatial=spatial, full=full, channels=channels, is_gaussian=False)


def _interleave(t: torch.Tensor, lead: int, n_spatial: int) -> torch.Tensor:
    """(lead..., S1..Sk, S1'..Sk') -> (lead..., S1, S1', ..., Sk, Sk')."""
    order = list(range(lead))
    for d in range(n_spatial):
        order += [lead + d, lead + n_spatial + d]
    return t.permute(order)


def _pair_kernel(a: torch.Tensor, b: torch.Tensor, full: bool) -> torch.Tensor:
    spatial = a.shape[2:]
    if not spatial:
        return a @ b.T
    if not full:
        return torch.einsum("ic...,jc...->ij...", a, b)
    af, bf = a.flatten(2), b.flatten(2)
    t = torch.einsum("icp,jcq->ijpq", af, bf).reshape(len(a), len(b), *spatial, *spatial)
    return _interleave(t, 2, len(spatial))


def _self_kernel(a: torch.Tensor, full: bool) -> torch.Tensor:
    spatial = a.shape[2:]
    if not full or not spatial:
        return (a * a).sum(1)
    af = a.flatten(2)
    t = torch.einsum("icp,icq->ipq", af, af).reshape(len(a), *spatial, *spatial)
    return _interleave(t, 1, len(spatial))
