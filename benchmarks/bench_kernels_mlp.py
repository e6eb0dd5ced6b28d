"""(a) NNGP + NTK of a 3-hidden-layer ReLU MLP on MNIST, against neural-tangents.

The ``fc3-relu`` preset (Dense 512 with W_std=sqrt(2), b_std=0.05, ReLU, three times, then a
Dense readout) on n = 2000 and 5000 standardised MNIST images (784 features), x1 with itself,
float64 and float32.  Rows: widenets with its default compilation policy ("auto": eager below
the size where compiling pays), widenets with every dual compiled (``WIDENETS_COMPILE=always``
semantics; compile time reported separately), and neural-tangents 0.6.5 (``jax.jit``, CPU;
x64 mode for float64, off for float32) in ``../ntref``, repetitions interleaved in one run.
"CPU s" is the median CPU time of the process (all its threads; nt's worker measures its
own): with ``--threads 1`` it is the work done, whatever share of the machine other users
leave, and the fair comparison on a shared machine (wall time also counts waiting for a
core).  "% limit" is the time the cost model needs at this machine's measured peaks over
the time taken (wall; and CPU, against peaks measured in CPU time, with one thread): the
Gram matrix
``2 n^2 d`` FLOPs at the matmul rate, plus per layer and entry of the n x n grid
max(44 FLOPs at the matmul rate, reading and writing NNGP and NTK once at the copy
bandwidth).

    .venv/bin/python benchmarks/bench_kernels_mlp.py [--sizes 2000 5000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import _kernel_bench as kb

import widenets.data
from widenets.kernels import fused
from widenets.presets import architecture
from widenets.scale.plan import FLOPS_ACTIVATION, FLOPS_AFFINE

NT_ARCH = [["dense", 512, math.sqrt(2), 0.05], ["relu"]] * 3 + [["dense", 1, 1.0, 0.05]]
HIDDEN = 3


def limit_seconds(n: int, d: int, dtype: torch.dtype, limits: dict) -> float:
    name = "f64" if dtype == torch.float64 else "f32"
    peak, itemsize = limits[f"matmul_{name}"], torch.finfo(dtype).bits // 8
    gram = 2 * n * n * d / peak
    layer = max((FLOPS_AFFINE + FLOPS_ACTIVATION) * n * n / peak,
                4 * itemsize * n * n / limits["copy_bandwidth"])
    return gram + HIDDEN * layer + FLOPS_AFFINE * n * n / peak


def _accuracy(k: dict, ref: dict | None, exact) -> str:
    """Relative errors against widenets' float64 kernels (float32 rows and nt), or against
    neural-tangents (widenets float64 rows); split off the diagonal, where nt loses
    sqrt(eps) to the angle of a nearly-1 correlation and widenets snaps it to 0."""
    import numpy as np

    base = {name: getattr(exact, name).numpy() for name in ("nngp", "ntk")}
    if ref is not None and k["ntk"].dtype == np.float64 and k is not ref:
        base, against = ref, "nt"
    else:
        against = "widenets f64"
    off, diag = [], []
    for name in ("nngp", "ntk"):
        a, b = np.asarray(k[name], np.float64), np.asarray(base[name], np.float64)
        scale, eye = np.abs(b).max(), np.eye(len(b), dtype=bool)
        off.append(np.abs(a - b)[~eye].max() / scale)
        diag.append(np.abs(a - b)[eye].max() / scale)
    return f"{max(off):.1e} / {max(diag):.1e} vs {against}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (and XLA's, for 1); default: torch's default")
    args = parser.parse_args()
    limits, cpu_limits = kb.setup(args.threads)
    workers = {d: kb.NeuralTangents(d) for d in ("float64", "float32")}
    if not workers["float64"].available:
        print(workers["float64"].reason)
    net = architecture("fc3-relu")
    rows = []
    for n in args.sizes:
        x64 = widenets.data.load("mnist", n, 1, flatten=True).x_train.to(torch.float64)
        exact = None
        for dtype in (torch.float64, torch.float32):
            x, name = x64.to(dtype), str(dtype).removeprefix("torch.")
            case, nt = f"mlp-{n}-{name}", workers[name]
            fns, first, results = {}, {}, {}
            for mode in ("auto", "always"):
                def run(mode=mode, x=x, dtype=dtype):
                    old = fused.set_compile(mode)
                    try:
                        return net.kernel(x, dtype=dtype)
                    finally:
                        fused.set_compile(old)
                start = time.perf_counter()
                results[mode] = run()
                first[mode] = time.perf_counter() - start
                fns[f"widenets ({mode})"] = lambda run=run: run() and None
            exact = exact or results["auto"]
            ref = None
            if nt.available:
                nt.setup(case, NT_ARCH, x.numpy(), None, name)
                first["nt"], ref = nt.run(case, save=True)
                fns["neural-tangents"] = lambda case=case, nt=nt: (nt.run(case), nt.last_cpu)
            times = kb.interleaved(fns, args.repeats if n <= 2000 else max(3, args.repeats // 2))
            limit = limit_seconds(n, x.shape[1], dtype, limits)
            cpu_limit = cpu_limits and limit_seconds(n, x.shape[1], dtype, cpu_limits)
            base, base_cpu = times.get("neural-tangents", (None, None))
            for label, (seconds, cpu) in times.items():
                key = "nt" if label == "neural-tangents" else label[10:-1]
                ours = ref if key == "nt" else {k: getattr(results[key], k).numpy()
                                                for k in ("nngp", "ntk")}
                rows.append([f"{n} x 784", name, label, f"{seconds:.3f}", f"{first[key]:.1f}",
                             "" if base is None else f"{seconds / base:.2f}", f"{cpu:.3f}",
                             "" if base is None else f"{cpu / base_cpu:.2f}",
                             f"{100 * limit / seconds:.0f}%",
                             f"{100 * cpu_limit / cpu:.0f}%" if cpu_limit else "",
                             _accuracy(ours, ref, exact)])
        print(kb.table(rows, ["inputs", "dtype", "code", "median s", "first s", "vs nt",
                              "CPU s", "CPU vs nt", "% limit", "% limit CPU",
                              "max rel error: off-diagonal / diagonal"]), flush=True)
    for nt in workers.values():
        nt.close()
    print(kb.load_note())


if __name__ == "__main__":
    main()
