"""Run a GAP plan (:mod:`widenets.kernels.gap`) on chunks of input pairs.

A chunk is a flat buffer ``margin + pairs * entries + margin`` per kernel (NNGP and NTK), with
each pair's position-pair covariances in the padded ``(Q, Q)`` layout described in :mod:`gap`.
One *stage* (a convolution and the position-wise layers after it) reads one set of buffers
and writes the image's positions of the other (the slots stay zero): a PyTorch function,
fused and compiled where it pays (:func:`widenets.kernels.fused.fused`), or for a
convolution followed by a ReLU-family activation the C++ loop of
:mod:`widenets.kernels.native_stage`.
"""

from __future__ import annotations

import math

import torch

from widenets.kernels.fused import fused

Tensor = torch.Tensor
# bytes per kernel array in one chunk of pairs: the few live arrays of a stage then stay in
# the L2/L3 caches (chosen by bench_cnn_gap.py on a 2-core EPYC: 1-4 MB are all within 10%)
CHUNK_BYTES = 2 * 2**20
# elementwise passes per entry of one stage: taps, affine, clip, angle, dual (eager)
_PASSES = 24


def _spread(v: Tensor, first: bool) -> Tensor:
    """``(pairs, *size)`` variances broadcast against the ``(pairs, *size, *size)`` layout."""
    ones = (1,) * (v.ndim - 1)
    return v.reshape(v.shape[0], *v.shape[1:], *ones) if first else \
        v.reshape(v.shape[0], *ones, *v.shape[1:])


def pairs_on_image(size: tuple[int, ...]) -> tuple[slice, ...]:
    """Index of the image's position pairs in ``(pairs, *rows, *rows)`` (slots left out)."""
    inside = tuple(slice(0, s) for s in size)
    return (slice(None), *inside, *inside)


def _same_position(k: Tensor) -> Tensor:
    """``(pairs, *size)``: the entries of ``(pairs, *size, *size)`` with equal positions."""
    for d in range((k.ndim - 1) // 2, 0, -1):
        k = torch.diagonal(k, dim1=1, dim2=1 + d)
    return k


def stage_function(stage, plan, own: bool):
    """``(kbuf, tbuf, *variances) -> (k, t, *variances read)``.

    Reads the flat chunk buffers ``kbuf``, ``tbuf`` (``margin`` zeros at both ends, zeros on
    the slots) and returns the stage's result on the image's positions only,
    ``(pairs, *size, *size)``: no work is spent on the slots.
    With ``own`` (pairs of an input with itself) the variances before each activation are
    read from the pairs' own same-position entries and returned; otherwise they are given,
    ``(v1, v2)`` per activation, already spread against the layout.
    """
    from widenets.layers.activation import Activation
    from widenets.layers.affine import affine_pair

    m, conv, rows = plan.margin, stage.conv, plan.rows
    taps = len(stage.offsets)
    inside = pairs_on_image(stage.size)

    def run(kbuf, tbuf, *variances):
        n = kbuf.shape[0] - 2 * m

        def shifted(buf, o):  # the chunk moved by o entries, on the image's positions
            return buf[m + o:m + o + n].view(-1, *rows, *rows)[inside]

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
                if own:
                    v = _same_position(k)
                    found.append(v)
                    v1, v2 = _spread(v, True), _spread(v, False)
                else:
                    v1, v2 = next(given), next(given)
                k, t = layer.pair_rule(k, t, v1, v2)
            else:
                k, t = affine_pair(k, t, layer.weight_std, layer.bias_std,
                                   layer.parameterization, fan_in)
        return (k, t, *found)

    return run


def _compilable(stage) -> bool:
    from widenets.layers.elementwise import Elementwise

    return not any(isinstance(layer, Elementwise) for layer in stage.pointwise)


def input_chunk(plan, a: Tensor, b: Tensor, buf: Tensor) -> None:
    """Write the input kernel ``sum_c a_c(p) b_c(p') / C`` of each pair into the image's
    positions of ``buf`` (its slots are zero: nothing ever writes them)."""
    pairs, channels, spatial = a.shape[0], a.shape[1], plan.spatial
    af, bf = a.flatten(2), b.flatten(2)
    grid = af[:, 0, :, None] * bf[:, 0, None, :] if channels == 1 else \
        torch.bmm(af.transpose(1, 2), bf) / channels  # one channel: an outer product
    inner = buf[plan.margin:plan.margin + pairs * plan.entries].view(pairs, *plan.rows,
                                                                        *plan.rows)
    inner[pairs_on_image(spatial)] = grid.reshape(pairs, *spatial, *spatial)


def chunk_size(plan, itemsize: int, pairs: int) -> int:
    return max(1, min(pairs, CHUNK_BYTES // (plan.entries * itemsize)))


class _Buffers:
    """Two sets of flat chunk buffers (K, and Theta if wanted) with ``margin`` zeros at both
    ends: a stage reads the current set and writes the image's positions of the other."""

    def __init__(self, plan, x: Tensor, chunk: int, with_ntk: bool):
        self.plan, self.chunk = plan, chunk
        self.flat = [[x.new_zeros(2 * plan.margin + chunk * plan.entries)
                      for _ in range(2 if with_ntk else 1)] for _ in range(2)]
        self.inner = [[b[plan.margin:plan.margin + chunk * plan.entries].view(
            chunk, *plan.rows, *plan.rows) for b in bufs] for bufs in self.flat]
        self.held = [plan.spatial, plan.spatial]  # image size each set's entries describe
        self.cur = 0

    def load(self, a: Tensor, b: Tensor) -> None:
        """The input kernels of the pairs ``(a, b)`` into the current set (zero NTK)."""
        self.cur = 0
        input_chunk(self.plan, a, b, self.flat[0][0])
        for t in self.flat[0][1:]:
            t.zero_()
        self.held[0] = self.plan.spatial

    def target(self, size: tuple[int, ...]) -> list[Tensor]:
        """The other set's ``(chunk, *rows, *rows)`` views, for results of image ``size``."""
        out = 1 - self.cur
        if self.held[out] != size:  # positions outside the new image must be slots (zeros)
            for view in self.inner[out]:
                view.zero_()
        self.held[out] = size
        return self.inner[out]

    def flip(self) -> None:
        self.cur = 1 - self.cur

    def sums(self) -> Tensor:
        """``(kernels, chunk)`` float64 sums over all position pairs (slots are zero)."""
        return torch.stack([v.reshape(self.chunk, -1).sum(1, dtype=torch.float64)
                            for v in self.inner[self.cur]])


def run_pairs(plan, x: Tensor, rows: Tensor, cols: Tensor, with_ntk: bool,
              tables: list[Tensor] | None = None, total_pairs: int | None = None):
    """GAP-layer kernels of the pairs ``(x[rows], x[cols])``: ``(nngp, ntk, tables)``.

    ``nngp`` and ``ntk`` are float64 ``(pairs,)``.  Without ``tables`` the pairs must be inputs
    with themselves (``rows == cols``); their per-position variances before each activation,
    ``(pairs, *size)`` each, are returned as ``tables`` for pairs of these inputs (indexed by
    the position in ``rows``, which must then be ``arange``).  ``total_pairs`` (default: these
    pairs) is the size of the whole computation this call is part of, which decides whether
    compiling pays.
    """
    own = tables is None
    chunk = chunk_size(plan, x.element_size(), len(rows))
    stages = _stages(plan, x, own, with_ntk, chunk, total_pairs or len(rows))
    bufs = _Buffers(plan, x, chunk, with_ntk)
    found = [[] for _ in range(sum(n for *_, n in stages))] if own else None
    # square roots of the variance tables for the native stages, stacked: one gather of the
    # chunk's rows serves all of them
    slot, act, roots = {}, 0, []  # activation index -> position in the stack
    for _, native, _, n_act in stages:
        if native is not None:
            slot[act] = len(roots)
            roots.append(native.roots(tables[act]))
        act += n_act
    firsts, seconds = (list(r) for r in zip(*roots, strict=True)) if roots else ([], [])
    if len({r.shape for r in firsts}) == 1:  # ('valid' convolutions change the sizes)
        firsts, seconds = torch.stack(firsts), torch.stack(seconds)
    sums = torch.empty(2 if with_ntk else 1, len(rows), dtype=torch.float64, device=x.device)
    for start in range(0, len(rows), chunk):
        i, j = rows[start:start + chunk], cols[start:start + chunk]
        real = len(i)
        if real < chunk:  # one shape per plan: compiled code is specialised to it
            i, j = (torch.cat([v, v[-1:].expand(chunk - real)]) for v in (i, j))
        bufs.load(x[i], x[j])
        act, chunk_sums = 0, None
        first, second = (firsts[:, :, i], seconds[:, :, j]) if isinstance(firsts, Tensor) \
            else ([r[:, i] for r in firsts], [r[:, j] for r in seconds])
        for s, (fn, native, size, n_act) in enumerate(stages):
            current, out = bufs.flat[bufs.cur], bufs.target(size)
            if native is not None:
                if s == len(stages) - 1:  # the last stage also sums its results (float64)
                    chunk_sums = x.new_empty(chunk, 2, dtype=torch.float64)
                native(*bufs.inner[bufs.cur], *out, first[slot[act]], second[slot[act]],
                       chunk_sums)
            else:
                given = []
                for a in range(act, act + n_act) if not own else ():
                    given += [_spread(tables[a][i], True), _spread(tables[a][j], False)]
                k, t, *read = fn(*(current + [None] * (2 - len(current))), *given)
                at = pairs_on_image(size)
                for view, value in zip(out, (k, t), strict=False):
                    view[at] = value
                for a, v in enumerate(read, start=act):
                    found[a].append(v[:real])
            act += n_act
            bufs.flip()
        sums[:, start:start + real] = (bufs.sums() if chunk_sums is None
                                       else chunk_sums.T)[:, :real]
    sums /= math.prod(plan.out_spatial) ** 2
    return (sums[0], sums[1] if with_ntk else None,
            [torch.cat(v) for v in found] if own else tables)


def _stages(plan, x: Tensor, own: bool, with_ntk: bool, chunk: int, total_pairs: int) -> list:
    """``(compiled stage, native stage or None, size, activations)`` of each stage."""
    from widenets.kernels import native_stage

    work = total_pairs * plan.entries * _PASSES * len(plan.stages) * (2 if with_ntk else 1)
    out = []
    for stage in plan.stages:
        ab = None if own or not with_ntk else native_stage.ab(stage)
        if ab is not None and native_stage.available(x.dtype, x.device, work):
            out.append((None, native_stage.NativeStage(stage, plan, *ab, x.dtype), stage.size,
                        1))
            continue
        key = ("gap", stage, plan.rows, plan.margin, chunk, own, with_ntk, x.dtype,
               x.device.type)
        fn = fused(key, stage_function(stage, plan, own),
                   work if _compilable(stage) else 0.0, dynamic=False)
        out.append((fn, None, stage.size, _activations(stage)))
    return out


def _activations(stage) -> int:
    from widenets.layers.activation import Activation

    return sum(isinstance(layer, Activation) for layer in stage.pointwise)
