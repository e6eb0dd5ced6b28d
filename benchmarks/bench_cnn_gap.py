"""(b), (c) CNN-GAP kernels (NNGP + NTK), against neural-tangents and this machine's limit.

The ``cnn-gap-8`` preset (8 convolutions 3x3 'same' with ReLU, W_std=sqrt(2), b_std=0.05,
global average pooling, Dense readout), x1 with itself:

(b) n = 300 of scikit-learn's 8x8 digits: the 300 x 300 matrix (45,150 distinct pairs);
(c) n = 6 CIFAR-10 images, 32x32x3: seconds per pair (and per pair of a 21-layer network,
    scaled by depth: the cost is linear in the number of conv layers).

widenets runs its default policy (the fused GAP path, compiled because these calls are
large; compile time reported as "first s"); neural-tangents 0.6.5 (``../ntref``, CPU, x64
mode for float64, off for float32) runs ``nt.batch(kernel_fn, batch_size)``, as its
documentation advises for GAP kernels, which would not fit in memory at once; it computes
every ordered pair.  Repetitions are interleaved in one run.  "% FLOP limit": the time the
cost model of cntk.md §1.4 needs at the measured matmul peak -- 50 FLOPs per position pair
per layer, transcendentals included (the arccos counted as 20: the code evaluates it as a
polynomial atan2, a division and a dozen FMAs; the square root as 1) over the distinct
input pairs -- over the time taken.  "% limit": the same count, but the square root and the
division (one of each per entry) at the measured throughput of the vector divide/sqrt unit
(``_divider.cpp``; 0.76 + 0.40 ns per f64 element on this EPYC, against 0.03 ns per FLOP at
the FMA peak) -- the bound the hardware sets; wall time, and "% limit CPU" against peaks
per CPU second with one thread.  "CPU s": CPU seconds of each process (nt's worker measures its
own); on a shared machine the fair measure of work with one thread each.  Eager torch's
own acos/atan2/sqrt throughputs are printed too; under load they are too noisy to serve as
a limit.
Use ``--threads 1`` on a shared machine: with several threads each small parallel region
waits for its slowest thread, which costs 10x or more under load (issue 7 notes).

    .venv/bin/python benchmarks/bench_cnn_gap.py [--n 300] [--cifar 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _kernel_bench as kb

import widenets.data
from widenets.presets import architecture

DEPTH = 8
NT_ARCH = [["conv", 128, math.sqrt(2), 0.05], ["relu"]] * DEPTH + [["gap"],
                                                                   ["dense", 1, 1.0, 0.05]]
FLOPS_PER_ENTRY_LAYER = 50  # cntk.md §1.4, NNGP + NTK
# net.kernel refuses a GAP matrix whose general-engine working set would not fit in memory
# unless a block size is given (as its error message says); the fused GAP path works on
# cache-sized chunks whatever the block size
BLOCK = 100


def limit_seconds(pairs: int, positions: int, depth: int, dtype: torch.dtype,
                  limits: dict, divider: bool = True) -> float:
    """Seconds the counted work needs: 50 FLOPs per position pair and layer at the matmul
    peak; with ``divider``, the square root and the division among them at the measured
    throughput of the vector divide/sqrt unit instead (they are not pipelined like FMAs)."""
    d = "f64" if dtype == torch.float64 else "f32"
    per_entry = FLOPS_PER_ENTRY_LAYER / limits[f"matmul_{d}"]
    if divider and f"sqrt_{d}_seconds" in limits:
        per_entry = ((FLOPS_PER_ENTRY_LAYER - 2) / limits[f"matmul_{d}"]
                     + limits[f"sqrt_{d}_seconds"] + limits[f"div_{d}_seconds"])
    return pairs * positions**2 * depth * per_entry


def accuracy(k, ref) -> str:
    """Max relative difference off the diagonal / on it."""
    out = []
    for part in ("off", "diag"):
        worst = 0.0
        for name in ("nngp", "ntk"):
            a, b = np.asarray(k[name], np.float64), np.asarray(ref[name], np.float64)
            eye = np.eye(len(b), dtype=bool)
            mask = ~eye if part == "off" else eye
            worst = max(worst, np.abs(a - b)[mask].max() / np.abs(b).max())
        out.append(f"{worst:.1e}")
    return " / ".join(out)


def run_case(label, x, batch_size, repeats, nt_repeats, limits, workers, rows, per_pair,
             device="cpu", cpu_limits=None):
    net = architecture("cnn-gap-8")
    n, positions = len(x), math.prod(x.shape[2:])
    pairs = n * (n + 1) // 2
    exact = None
    for dtype in (torch.float64, torch.float32):
        name = str(dtype).removeprefix("torch.")
        xd = x.to(dtype)
        xw = xd.to(device)
        start = time.perf_counter()
        result = net.kernel(xw, dtype=dtype, batch_size=BLOCK)
        first = time.perf_counter() - start
        ours = {k: getattr(result, k).cpu().numpy() for k in ("nngp", "ntk")}
        exact = exact or ours
        times = {"widenets": []}
        nt = workers[name]
        nt_first, ref = None, None
        if nt.available:
            nt.setup(f"{label}-{name}", NT_ARCH, xd.numpy(), None, name, batch_size)
            nt.setup(f"{label}-{name}-warm", NT_ARCH, xd[:batch_size].numpy(), None, name,
                     batch_size)
            nt_first = nt.run(f"{label}-{name}-warm")  # compiles the batch shapes
            times["neural-tangents"] = []
        for r in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            k = net.kernel(xw, dtype=dtype, batch_size=BLOCK)
            k.ntk.cpu()  # waits for a GPU
            times["widenets"].append((time.perf_counter() - start, time.process_time() - cpu))
            if nt.available and r < nt_repeats:
                if ref is None:
                    seconds, ref = nt.run(f"{label}-{name}", save=True)
                else:
                    seconds = nt.run(f"{label}-{name}")
                times["neural-tangents"].append((seconds, nt.last_cpu))
        med = {k: np.median(np.array(v), axis=0) for k, v in times.items()}
        limit = limit_seconds(pairs, positions, DEPTH, dtype, limits)
        flops_only = limit_seconds(pairs, positions, DEPTH, dtype, limits, divider=False)
        cpu_limit = cpu_limits and limit_seconds(pairs, positions, DEPTH, dtype, cpu_limits)
        base = med.get("neural-tangents", (math.nan, math.nan))
        for code, (seconds, cpu) in med.items():
            if code == "widenets":
                err = accuracy(ours, ref) + " vs nt" if name == "float64" and ref is not None \
                    else accuracy(ours, exact) + " vs widenets f64"
                computed, f = pairs, first
            else:
                err = accuracy(ref, exact) + " vs widenets f64"
                computed, f = n * n, nt_first
            rows.append([label, name, code, f"{seconds:.2f}", "" if f is None else f"{f:.1f}",
                         f"{seconds / base[0]:.3f}", f"{cpu:.2f}", f"{cpu / base[1]:.3f}",
                         f"{1e3 * cpu / computed:.3f}", f"{100 * flops_only / seconds:.1f}%",
                         f"{100 * limit / seconds:.1f}%",
                         f"{100 * cpu_limit / cpu:.1f}%" if cpu_limit else "", err])
            if per_pair:
                per_pair.append((name, code, seconds / computed, cpu / computed))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="digits for (b); 0 skips it")
    parser.add_argument("--cifar", type=int, default=6, help="CIFAR images for (c); 0 skips")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nt-repeats", type=int, default=1,
                        help="neural-tangents runs of (b) (each takes minutes)")
    parser.add_argument("--device", default="cpu", help="widenets' device (nt stays on CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (and XLA's, for 1); default: torch's default")
    args = parser.parse_args()
    limits, cpu_limits = kb.setup(args.threads)
    workers = {d: kb.NeuralTangents(d) for d in ("float64", "float32")}
    if not workers["float64"].available:
        print(workers["float64"].reason)
    header = ["case", "dtype", "code", "median s", "first s", "vs nt", "CPU s", "CPU vs nt",
              "CPU ms/pair", "% FLOP limit", "% limit", "% limit CPU",
              "max rel error: off-diagonal / diagonal"]
    rows: list = []
    if args.n:
        x = widenets.data.load("digits", args.n, 1).x_train.to(torch.float64)
        batch = math.gcd(args.n, 50)
        run_case(f"(b) digits 8x8, {args.n}x{args.n}", x, batch, args.repeats,
                 args.nt_repeats, limits, workers, rows, None, args.device, cpu_limits)
        print(kb.table(rows, header), flush=True)
    if args.cifar:
        x = widenets.data.load("cifar10", args.cifar, 1).x_train.to(torch.float64)
        per_pair = [None]
        run_case(f"(c) CIFAR 32x32x3, {args.cifar}x{args.cifar}", x, math.gcd(args.cifar, 2),
                 args.repeats, args.repeats, limits, workers, rows, per_pair, args.device,
                 cpu_limits)
        print(kb.table(rows, header))
        for name, code, seconds, cpu in per_pair[1:]:
            print(f"(c) {code} {name}: {seconds:.3f} s ({cpu:.3f} CPU s) per pair for 8 conv "
                  f"layers; {seconds * 20 / 8:.3f} s ({cpu * 20 / 8:.3f} CPU s) per pair scaled "
                  "to the 21-layer CNTK-GAP (20 conv layers)")
    for nt in workers.values():
        nt.close()
    print(kb.load_note())


if __name__ == "__main__":
    main()
