"""Run a GAP plan (:mod:`widenets.kernels.gap`) on chunks of input pairs.

A chunk is a flat buffer ``margin + pairs * entries + margin`` per kernel (NNGP and NTK), with
each pair's position-pair covariances in the padded ``(Q, Q)`` layout described in :mod:`gap`.
One *stage* (a convolution and the position-wise layers after it) is one function of the
buffers, fused and compiled where it pays (:func:`widenets.kernels.fused.fused`).
"""

from __future__ import annotations

import math

import torch

from widenets.kernels.fused import fused

Tensor = torch.Tensor
# bytes per kernel array in one chunk of pairs: the few live arrays of a stage then stay in
# the L2/L3 caches (chosen by bench_cnn_gap.py on a 2-core EPYC: 1-4 MB are all within 10%)
CHUNK_BYTES = 2 * 2**20
# elementwise passes per entry of one stage: taps, affine, clip, angle, dual, mask (eager)
_PASSES = 24


def _spread(v: Tensor, first: bool) -> Tensor:
    """``(pairs, *rows)`` variances broadcast against the ``(pairs, Q, Q)`` layout."""
    v = v.reshape(v.shape[0], -1)
    return v.unsqueeze(2) if first else v.unsqueeze(1)


def stage_function(stage, plan, own: bool):
    """``(kbuf, tbuf, mask, diag_mask, *variances) -> (k, t, *variances read)``.

    Reads the flat chunk buffers ``kbuf``, ``tbuf`` (``margin`` zeros at both ends) and
    returns the stage's result as ``(pairs, Q, Q)`` tensors.
    With ``own`` (pairs of an input with itself) the variances before each activation are
    read from the pairs' own same-position entries and returned; otherwise they are given,
    ``(v1, v2)`` per activation, already spread against the layout.
    """
    from widenets.layers.activation import Activation
    from widenets.layers.affine import affine_pair

    m, shape, conv = plan.margin, (-1, plan.side, plan.side), stage.conv
    taps = len(stage.offsets)

    def run(kbuf, tbuf, mask, diag_mask, *variances):
        n = kbuf.shape[0] - 2 * m
        def shifted(buf, o):  # the chunk moved by o entries, as (pairs, Q, Q)
            return buf[m + o:m + o + n].view(shape)

        if conv is None:
            k, t = shifted(kbuf, 0), (None if tbuf is None else shifted(tbuf, 0))
        else:
            # joint shift of both positions by every filter tap: shifted slices of the buffer
            k = sum(shifted(kbuf, o) for o in stage.offsets) * (1.0 / taps)
            t = None if tbuf is None else \
                sum(shifted(tbuf, o) for o in stage.offsets) * (1.0 / taps)
            k, t = affine_pair(k, t, conv.weight_std, conv.bias_std, conv.parameterization,
                               stage.fan_in)
        given, found = iter(variances), []
        for layer, fan_in in zip(stage.pointwise, stage.channels, strict=True):
            if isinstance(layer, Activation):
                if own:  # slots get variance 1 (any positive value: they are masked)
                    v = torch.where(diag_mask, torch.diagonal(k, dim1=1, dim2=2), 1.0)
                    found.append(v)
                    v1, v2 = _spread(v, True), _spread(v, False)
                else:
                    v1, v2 = next(given), next(given)
                k, t = layer.pair_rule(k, t, v1, v2)
            else:
                k, t = affine_pair(k, t, layer.weight_std, layer.bias_std,
                                   layer.parameterization, fan_in)
        # slots (positions outside the image) back to zero for the next window sum
        k = torch.where(mask, k, 0.0)
        return (k, None if t is None else torch.where(mask, t, 0.0), *found)

    return run


def _compilable(stage) -> bool:
    from widenets.layers.elementwise import Elementwise

    return not any(isinstance(layer, Elementwise) for layer in stage.pointwise)


def _masks(plan, size: tuple[int, ...], device) -> tuple[Tensor, Tensor]:
    """Where the image is, in the pair layout and on the same-position plane."""
    diag = torch.zeros(plan.rows, dtype=torch.bool, device=device)
    diag[tuple(slice(0, s) for s in size)] = True
    diag = diag.reshape(1, -1)
    return diag.unsqueeze(2) & diag.unsqueeze(1), diag


def input_chunk(plan, a: Tensor, b: Tensor, buf: Tensor) -> None:
    """Write the input kernel ``sum_c a_c(p) b_c(p') / C`` of each pair into ``buf``."""
    pairs, channels, spatial = a.shape[0], a.shape[1], plan.spatial
    grid = torch.bmm(a.flatten(2).transpose(1, 2), b.flatten(2)) / channels
    inner = buf[plan.margin:plan.margin + pairs * plan.entries].view(pairs, *plan.rows,
                                                                        *plan.rows)
    inside = tuple(slice(0, s) for s in spatial)
    inner.zero_()
    inner[(slice(None), *inside, *inside)] = grid.reshape(pairs, *spatial, *spatial)


def chunk_size(plan, itemsize: int, pairs: int) -> int:
    return max(1, min(pairs, CHUNK_BYTES // (plan.entries * itemsize)))


def run_pairs(plan, x: Tensor, rows: Tensor, cols: Tensor, with_ntk: bool,
              tables: list[Tensor] | None = None, total_pairs: int | None = None):
    """GAP-layer kernels of the pairs ``(x[rows], x[cols])``: ``(nngp, ntk, tables)``.

    ``nngp`` and ``ntk`` are float64 ``(pairs,)``.  Without ``tables`` the pairs must be inputs
    with themselves (``rows == cols``); their per-position variances before each activation,
    ``(pairs, *rows)`` each, are returned as ``tables`` for pairs of these inputs (indexed by
    the position in ``rows``, which must then be ``arange``).  ``total_pairs`` (default: these
    pairs) is the size of the whole computation this call is part of, which decides whether
    compiling pays.
    """
    own = tables is None
    chunk = chunk_size(plan, x.element_size(), len(rows))
    work = ((total_pairs or len(rows)) * plan.entries * _PASSES * len(plan.stages)
            * (2 if with_ntk else 1))
    stages = []
    for stage in plan.stages:
        fn = stage_function(stage, plan, own)
        key = ("gap", stage, plan.rows, plan.margin, chunk, own, with_ntk, x.dtype,
               x.device.type)
        fn = fused(key, fn, work if _compilable(stage) else 0.0, dynamic=False)
        stages.append((fn, *_masks(plan, stage.size, x.device), _activations(stage)))
    # one flat buffer per kernel with `margin` zeros at both ends, reused by every stage
    buffers = [x.new_zeros(2 * plan.margin + chunk * plan.entries)
               for _ in range(2 if with_ntk else 1)]
    found = [[] for _ in range(sum(n for *_, n in stages))] if own else None
    sums = torch.empty(len(buffers), len(rows), dtype=torch.float64, device=x.device)
    for start in range(0, len(rows), chunk):
        i, j = rows[start:start + chunk], cols[start:start + chunk]
        real = len(i)
        if real < chunk:  # one shape per plan: compiled code is specialised to it
            i, j = (torch.cat([v, v[-1:].expand(chunk - real)]) for v in (i, j))
        input_chunk(plan, x[i], x[j], buffers[0])
        if with_ntk:
            buffers[1].zero_()
        act = 0
        for fn, mask, diag, n_act in stages:
            given = []
            for a in range(act, act + n_act) if not own else ():
                given += [_spread(tables[a][i], True), _spread(tables[a][j], False)]
            k, t, *read = fn(buffers[0], buffers[1] if with_ntk else None, mask, diag, *given)
            for buf, value in zip(buffers, (k, t), strict=False):
                buf[plan.margin:plan.margin + value.numel()] = value.view(-1)
            for a, v in enumerate(read, start=act):
                found[a].append(v[:real])
            act += n_act
        for b, buf in enumerate(buffers):  # float64 sums; slots are zero
            inner = buf[plan.margin:plan.margin + chunk * plan.entries].view(chunk, -1)
            sums[b, start:start + real] = inner.sum(1, dtype=torch.float64)[:real]
    sums /= math.prod(plan.out_spatial) ** 2
    return (sums[0], sums[1] if with_ntk else None,
            [torch.cat(v) for v in found] if own else tables)


def _activations(stage) -> int:
    from widenets.layers.activation import Activation

    return sum(isinstance(layer, Activation) for layer in stage.pointwise)
