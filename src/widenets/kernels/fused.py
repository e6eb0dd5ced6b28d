"""Fused elementwise kernels: ``torch.compile`` where it pays, eager PyTorch otherwise.

An activation's dual kernel (clip the covariance, the angle, the closed form, the NTK product)
is a dozen elementwise passes in eager PyTorch; compiled, Inductor fuses them into one loop
that reads each entry once (measured: 4-6x faster on large CPU tensors, see
``benchmarks/bench_kernels_mlp.py``).  Compiling costs seconds once per process and function
(less with Inductor's on-disk cache), so by default (``"auto"``) a function is compiled only
when the work it is called on is large enough to repay that.
The numbers are the same up to rounding: the compiled code evaluates the same expressions.

The mode comes from :func:`set_compile` or the ``WIDENETS_COMPILE`` environment variable
(``auto``, ``always``, ``never``).  When compilation fails (no C++ compiler, an unsupported
operation) the eager function is used and the failure is logged once.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Callable, Hashable

import torch

_log = logging.getLogger("widenets")
MODES = ("auto", "always", "never")
# entries x passes below which compiling does not pay in "auto" mode: eager elementwise costs
# about 20 ns per entry and pass in float64 on one CPU core, compiling about 5 s
AUTO_THRESHOLD = 2.5e8

_mode = os.environ.get("WIDENETS_COMPILE", "auto").lower()
_compiled: dict[Hashable, Callable] = {}
_failed: set[Hashable] = set()


def set_compile(mode: str) -> str:
    """Set the compilation policy (``"auto"``, ``"always"`` or ``"never"``); return the old."""
    global _mode
    from widenets.errors import HyperparameterError, expected

    if mode not in MODES:
        raise HyperparameterError(expected("mode", f"one of {MODES}", repr(mode)))
    old, _mode = _mode, mode
    return old


def compile_mode() -> str:
    return _mode if _mode in MODES else "auto"


def compiling_pays(work: float) -> bool:
    """Whether the policy compiles code for a call of ``work`` entry-passes."""
    mode = compile_mode()
    return mode == "always" or (mode == "auto" and work >= AUTO_THRESHOLD)


def fused(key: Hashable, fn: Callable, work: float, *, dynamic: bool | None = None) -> Callable:
    """``fn`` compiled (cached under ``key``) if the policy says so, else ``fn`` itself.

    ``work`` is the number of entry-passes of the call (entries times elementwise passes); in
    ``"auto"`` mode compilation is worth it above :data:`AUTO_THRESHOLD`.
    """
    # the choice depends on the call alone (not on what ran before), so that the same call
    # always runs the same code and gives bit-identical results (resumed tiled jobs rely on it)
    if key in _failed or not compiling_pays(work):
        return fn
    if key in _compiled:
        return _compiled[key]
    # a private copy of the code object gives each key its own Dynamo cache (closures of one
    # function would otherwise share it and run into Dynamo's recompilation limit)
    fn_copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__,
                                 fn.__defaults__, fn.__closure__)
    # Inductor re-walks an expression once per use of every shared subexpression when it
    # inlines them, which is exponential in the depth of a dual kernel (an arc-cosine kernel
    # took minutes to compile); realising every buffer read twice keeps compilation linear,
    # and the scheduler still fuses them into one loop and drops the intermediate buffers
    compiled = torch.compile(fn_copy, fullgraph=True, dynamic=dynamic,
                             options={"realize_reads_threshold": 1})

    def guarded(*args):
        try:
            return compiled(*args)
        except Exception as err:  # compiler missing, unsupported op: run eagerly from now on
            _log.warning("widenets: compiling %s failed (%s: %s); using eager PyTorch",
                         key, type(err).__name__, str(err).splitlines()[0] if str(err) else "")
            _failed.add(key)
            _compiled.pop(key, None)
            return fn(*args)

    _compiled[key] = guarded
    return guarded
