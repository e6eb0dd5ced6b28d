"""A CNTK layer (convolution + ReLU-family activation) of the fused GAP path in one C++ loop.

Inductor compiles a GAP stage (:func:`widenets.kernels.gap_chunks.stage_function`) into
three or four loops with full-size intermediate buffers between them (its fusion does not
merge the strided window sum with the contiguous elementwise part); ``relu_stage.cpp`` does
the window sum, the affine rule and the arc-cosine dual in one pass over the image's
positions, several vectors at a time so that the latencies of the square root, the division
and the arctangent polynomial overlap (PyTorch's ``at::vec::Vectorized``): 2.3x faster per
pair than the compiled PyTorch stage for the depth-8 CNTK-GAP on 8x8 images (0.54 -> 0.23
ms per pair in float64, one core; ``benchmarks/results/cnn_gap.md``).

It is built once per machine by Inductor's own C++ builder
(``torch._inductor.codecache.CppCodeCache``, an internal API of the pinned torch; cached on
disk like Inductor's kernels) and called through ctypes on contiguous CPU tensors, under the
same policy as compiled code (:func:`widenets.kernels.fused.compiling_pays`).  Where it does
not apply (other activations, several position-wise layers, NNGP alone, non-CPU tensors) or
cannot be built, the caller uses the PyTorch stage; both agree with the general engine to
rounding (tests/kernels/test_native_stage.py).
"""

from __future__ import annotations

import ctypes
import logging
import math
from functools import cache
from pathlib import Path

import torch

_log = logging.getLogger("widenets")
_SOURCE = Path(__file__).with_name("relu_stage.cpp")
_FAILED: list[str] = []


def ab(stage) -> tuple[float, float] | None:
    """``(a, b)`` if ``stage`` is a convolution followed by one ``a min(u,0) + b max(u,0)``
    activation, else None."""
    from widenets.layers.relu import ABRelu, Abs, LeakyRelu, Relu

    if stage.conv is None or len(stage.pointwise) != 1:
        return None
    layer = stage.pointwise[0]
    if type(layer) is Relu:
        return 0.0, 1.0
    if type(layer) is LeakyRelu:
        return float(layer.alpha), 1.0
    if type(layer) is Abs:
        return -1.0, 1.0
    if type(layer) is ABRelu:
        return float(layer.a), float(layer.b)
    return None


@cache
def _library():
    from torch._inductor.codecache import CppCodeCache

    lib = CppCodeCache.load(_SOURCE.read_text())
    i64, dbl, ptr = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
    for name in ("relu_stage_f64", "relu_stage_f32"):
        fn = getattr(lib, name)
        fn.restype = None
        fn.argtypes = [ptr] * 8 + [i64, i64, ptr, i64, ptr, i64, ptr, i64,
                                   dbl, dbl, dbl, i64, dbl, dbl, dbl, ptr, i64]
    return lib


def available(dtype: torch.dtype, device: torch.device, work: float) -> bool:
    """Whether the native stage runs for a call of ``work`` entry-passes: CPU tensors, and the
    compilation policy (:func:`widenets.kernels.fused.compiling_pays`) builds code for it
    (once per machine; a failure is logged once and the PyTorch stage used)."""
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64) or _FAILED \
            or not _policy(work):
        return False
    try:
        _library()
    except Exception as err:  # no compiler, unsupported platform: the PyTorch stage is used
        _FAILED.append(f"{type(err).__name__}: {err}")
        _log.warning("widenets: the native CNTK stage could not be built (%s); using the "
                     "compiled PyTorch stage", _FAILED[0].splitlines()[0])
        return False
    return True


def _policy(work: float) -> bool:
    from widenets.kernels.fused import compiling_pays

    return compiling_pays(work)


class NativeStage:
    """The index tables of one stage on one plan, and a call on chunk buffers."""

    def __init__(self, stage, plan, a: float, b: float, dtype: torch.dtype):
        rows, size = plan.rows, stage.size
        strides = [math.prod(rows[d + 1:]) for d in range(len(rows))]
        grid = torch.zeros(size, dtype=torch.int64)
        for d, stride in enumerate(strides):
            shape = [1] * len(size)
            shape[d] = size[d]
            grid = grid + torch.arange(size[d]).reshape(shape) * stride
        self.pos1 = grid.reshape(-1).contiguous()
        self.span = int(grid.max()) + 1
        padded = torch.zeros(rows, dtype=dtype)
        padded[tuple(slice(0, s) for s in size)] = 1
        self.inside = padded.reshape(-1)[:self.span].contiguous()
        self.offsets = torch.tensor(stage.offsets, dtype=torch.int64)
        conv = stage.conv
        self.affine = (conv.weight_std**2, 0.0 if conv.bias_std is None else conv.bias_std**2,
                       float(stage.fan_in), int(conv.parameterization == "ntk"),
                       0.0 if conv.bias_std is None else 1.0)
        self.ab = (a, b)
        self.plan, self.size = plan, size

    def roots(self, variances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs' ``(inputs, *size)`` variances before the activation and their square
        roots: ``(2, inputs, S)`` (roots, variances) as first inputs and ``(2, inputs, Q)`` as
        second inputs, in the padded layout (1 on slots)."""
        both = torch.stack([variances.sqrt(), variances])
        n = both.shape[1]
        padded = both.new_ones(2, n, *self.plan.rows)
        padded[(slice(None), slice(None), *(slice(0, s) for s in self.size))] = both
        return both.reshape(2, n, -1).contiguous(), padded.reshape(2, n, -1)

    def __call__(self, kin: torch.Tensor, tin: torch.Tensor, kout: torch.Tensor,
                 tout: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
                 sums: torch.Tensor | None = None) -> None:
        """Write the stage's K and Theta from the chunk buffers ``kin``, ``tin`` (contiguous
        views from the chunk's first entry, slots zero; the margins around them are read)
        into ``kout``, ``tout`` (slots zero); ``first``, ``second``: :meth:`roots` of the
        pairs' first and second inputs, contiguous.  With ``sums`` (float64 ``(pairs, 2)``), the
        sums of each pair's K and Theta over all position pairs, accumulated in float64."""
        tensors = (kin, tin, kout, tout, first, second)
        # raw pointers go to C++: wrong layouts would corrupt memory, not raise
        if not all(t.is_contiguous() and t.dtype == kin.dtype for t in tensors) or \
                (sums is not None and (sums.dtype != torch.float64 or not sums.is_contiguous())):
            raise ValueError("NativeStage: expected contiguous tensors of one dtype")
        lib = _library()
        fn = lib.relu_stage_f64 if kin.dtype == torch.float64 else lib.relu_stage_f32
        fn(kin.data_ptr(), tin.data_ptr(), kout.data_ptr(), tout.data_ptr(), first[0].data_ptr(),
           second[0].data_ptr(), first[1].data_ptr(), second[1].data_ptr(), first.shape[1],
           self.plan.side, self.pos1.data_ptr(), len(self.pos1),
           self.inside.data_ptr(), self.span, self.offsets.data_ptr(), len(self.offsets),
           *self.affine, *self.ab, 0 if sums is None else sums.data_ptr(),
           torch.get_num_threads())
