"""Section 5: performance, measured live on this machine.

Median wall times over repeats of (a) the empirical NTK of a width-512 MLP by each
implementation, against plain ``torch.func`` Jacobian contraction (what a user would write
otherwise), and (b) analytic kernels: a ReLU MLP in float64 and float32 and a depth-8 CNN with
global average pooling.  The benchmark scripts in ``benchmarks/`` compare against
neural-tangents as well; their latest recorded tables are included when present.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch

import widenets as wn
from widenets.data import load
from widenets.finite.empirical import empirical_ntk
from widenets.report.context import ReportContext, Section, Table

IMPLEMENTATIONS = ("jacobian", "ntk_vector_products", "structured")


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sizes(ctx: ReportContext) -> dict:
    if ctx.smoke:
        return {"ntk_n": 16, "mlp_n": 100, "gap_n": 8, "repeats": 1}
    if ctx.quick:
        return {"ntk_n": 16, "mlp_n": 500, "gap_n": 20, "repeats": 1}
    # the jacobian baseline holds n x 10 x 560k float64 numbers: 1.4 GB at n = 32
    return {"ntk_n": 48, "mlp_n": 1500, "gap_n": 80, "repeats": 5}


def _mlp(width: int, depth: int, out: int) -> wn.Serial:
    layers = []
    for _ in range(depth):
        layers += [wn.Dense(width, 2**0.5, 0.05), wn.Relu()]
    return wn.serial(*layers, wn.Dense(out, 1.0, 0.05))


def measure(ctx: ReportContext, s: dict) -> dict:
    digits = load("digits", s["mlp_n"], 10, data_dir=ctx.data_dir, seed=ctx.seed)
    flat = digits.x_train.flatten(1)
    out: dict = {"threads": torch.get_num_threads(), "load": os.getloadavg()[0]}
    net = _mlp(512, 3, 10)
    model = net.module(seed=0, in_shape=(64,))
    x = flat[: s["ntk_n"]]
    out["empirical"] = {impl: _median_seconds(
        lambda impl=impl: empirical_ntk(model, x, implementation=impl), s["repeats"])
        for impl in IMPLEMENTATIONS}
    kernel_net = _mlp(512, 3, 1)
    out["mlp"] = {str(dtype).split(".")[-1]: _median_seconds(
        lambda dtype=dtype: kernel_net.kernel(flat, dtype=dtype), s["repeats"])
        for dtype in (torch.float64, torch.float32)}
    layers = []
    for _ in range(8):
        layers += [wn.Conv2d(128, 3, padding="same", weight_std=2**0.5, bias_std=0.05),
                   wn.Relu()]
    gap = wn.serial(*layers, wn.GlobalAvgPool(), wn.Dense(1))
    images = digits.x_train[: s["gap_n"]]
    out["gap"] = _median_seconds(lambda: gap.kernel(images, images), s["repeats"])
    return out


def _recorded_tables() -> list[Table]:
    """Tables saved by the benchmark scripts (benchmarks/results/*.md), if any."""
    root = Path(__file__).resolve().parents[4] / "benchmarks" / "results"
    tables = []
    for path in sorted(root.glob("*.md")) if root.exists() else []:
        lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
        if len(lines) < 3:
            continue
        cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
        tables.append(Table(f"Recorded benchmark {path.stem} (benchmarks/results/{path.name})",
                            cells[0], cells[2:]))
    return tables


def build(ctx: ReportContext) -> Section:
    s = _sizes(ctx)
    r = ctx.cached("performance", {**s, "host": os.uname().nodename}, lambda: measure(ctx, s))
    e = r["empirical"]
    base = e["jacobian"]
    n, m, g = s["ntk_n"], s["mlp_n"], s["gap_n"]
    rows = [[f"empirical NTK, {impl}", f"{n} digits, width-512 3-layer MLP, 10 outputs",
             f"{t * 1e3:.1f} ms", f"{base / t:.2f}x"] for impl, t in e.items()]
    pairs = m * (m + 1) // 2
    rows += [[f"analytic NNGP+NTK, {dt}", f"{m} digits ({pairs} pairs), 3-hidden-layer ReLU",
              f"{t * 1e3:.1f} ms", f"{pairs / t / 1e6:.2f} M pairs/s"]
             for dt, t in r["mlp"].items()]
    rows.append(["analytic NNGP+NTK, CNN-GAP depth 8", f"{g} x {g} 8x8 digit pairs",
                 f"{r['gap'] * 1e3:.1f} ms", f"{r['gap'] / g**2 * 1e3:.3f} ms/pair"])
    live = Table("Measured in this run (median over repeats; ratio: speed-up over torch.func "
                 "Jacobian contraction, or throughput)", ["computation", "size",
                                                          "median time", "ratio"], rows)
    best = min(e, key=e.get)
    return Section(
        key="performance", title="5. Performance",
        prediction="Structure makes finite and infinite kernels cheap: the empirical NTK of a "
                   "dense network is a sum over layers of (input Gram) x (cotangent Gram), "
                   "cheaper than contracting per-example Jacobians, and a CNN's GAP kernel is "
                   "a sum of independent offset planes (cntk.md §1.3).",
        settings={"repeats": s["repeats"], "torch threads": r["threads"],
                  "load average at start": f"{r['load']:.2f}"},
        tables=[live, *_recorded_tables()],
        findings=[f"fastest empirical NTK: {best} ({base / e[best]:.2f}x torch.func Jacobian "
                  "contraction)",
                  f"analytic MLP kernels: {pairs / r['mlp']['float64'] / 1e6:.2f} M pairs/s "
                  "(float64)",
                  f"CNN-GAP depth 8 on 8x8: {r['gap'] / g**2 * 1e3:.3f} ms per pair"],
    )
