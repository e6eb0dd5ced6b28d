"""Empirical NTK: time, peak memory and FLOPs of every implementation, against neural-tangents.

Workloads (issue 4): a width-512 MLP with three hidden ReLU layers and 10 outputs (the
``fc3-relu`` preset) on 256 MNIST images, and a small CNN (two 3x3 'same' convolutions with
16 channels, ReLU, global average pooling, 10 outputs) on the same images; float32, the full
``(n, n)`` kernel traced over outputs (``--output-axes full`` for ``(n, n, k, k)``).

Rows: widenets' ``structured``, ``ntk_vector_products`` and ``jacobian`` (the last is plain
``torch.func`` Jacobian contraction, ``vmap(jacrev)`` + matrix products, in blocks of 32 inputs
so that it fits in memory), and neural-tangents 0.6.5's three ``empirical_ntk_fn``
implementations run in ``../ntref`` (``JAX_PLATFORMS=cpu``) on the same weights and inputs
(neural-tangents is never a widenets dependency; its rows are skipped when ``../ntref`` is
missing).  Every row runs in its own process: the time is the median of the repetitions
after a warm-up (JAX compilation excluded), the memory the peak resident-set growth during
the timed runs (sampled every millisecond), the FLOPs those counted by
``torch.utils.flop_counter`` (not available for JAX rows), and "% peak" the achieved FLOP
rate over the float32 matrix-multiply rate measured in the same process.  Each row's kernel
is compared with widenets' structured one (max |difference| / max |kernel|).

    .venv/bin/python benchmarks/bench_empirical_ntk.py [--threads 1] [--n 256] [--quick]
        [--workloads mlp cnn] [--impls structured jacobian "nt structured" ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NTREF = ROOT.parent / "ntref" / "bin" / "python"
TORCH_IMPLS = ("structured", "ntk_vector_products", "jacobian")
NT_IMPLS = {"nt structured": 3, "nt ntk_vector_products": 2, "nt jacobian": 1}
# the same networks for widenets and stax: (kind, *arguments)
WORKLOADS = {
    "mlp": [("flatten",)] + [("dense", 512, 2**0.5, 0.05), ("relu",)] * 3
    + [("dense", 10, 1.0, 0.05)],
    "cnn": [("conv", 16, 2**0.5, 0.05), ("relu",), ("conv", 16, 2**0.5, 0.05), ("relu",),
            ("gap",), ("dense", 10, 1.0, 0.05)],
}


# -- measurement helpers (stdlib only: shared by the torch and the JAX workers) ------------
def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident-set growth over a block, sampled every millisecond by a thread."""

    def __enter__(self):
        self.base = self.peak = rss_bytes()
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self):
        while self.running:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.growth = self.peak - self.base


def timed_runs(fn, budget: float, max_reps: int) -> tuple[list[float], list[float], int]:
    """Wall-clock and process CPU seconds of each run, and the peak memory growth."""
    times, cpu, peak = [], [], 0
    while len(times) < max_reps and (sum(times) < budget or len(times) < 1):
        with PeakMemory() as mem:
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        peak = max(peak, mem.growth)
    return times, cpu, peak


# -- workers ------------------------------------------------------------------------------
def torch_worker(args) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "src"))
    from widenets.finite.empirical import empirical_ntk

    data = np.load(args.data)
    x = torch.from_numpy(data["x"])
    model = build_torch(WORKLOADS[args.workload], x.shape[1:])
    batch = 32 if args.impl != "structured" else 128

    def run():
        return empirical_ntk(model, x, implementation=args.impl, output_axes=args.output_axes,
                             batch_size=batch)

    with flop_counter() as counter:
        start, start_cpu = time.perf_counter(), time.process_time()
        kernel = run()
        first, first_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if first > args.slow:  # one (already long) run is enough
        times, cpu, peak = [first], [first_cpu], None
    else:
        times, cpu, peak = timed_runs(run, args.budget, args.reps)
    np.save(args.out, kernel.numpy())
    a = torch.randn(2048, 2048)
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    peak_rate = 5 * 2 * 2048**3 / (time.perf_counter() - start)
    return {"times": times, "cpu": cpu, "memory": peak,
            "flops": None if counter.grouped else counter.total,
            "matmul_rate": peak_rate}


def flop_counter():
    """Count matmul/conv FLOPs of the aten ops actually run (torch.utils.flop_counter's
    formulas; its FlopCounterMode's module tracking breaks inside torch.func.vjp)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    groups_arg = {torch.ops.aten.convolution: 8, torch.ops.aten.convolution_backward: 9}

    class Counter(TorchDispatchMode):
        total = 0
        grouped = False  # torch's formulas ignore groups in the weight gradient: overcount

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            packet = func._overloadpacket
            count = flop_registry.get(packet)
            if count is not None:
                self.total += count(*args, **kwargs, out_val=out)
            if packet in groups_arg and len(args) > groups_arg[packet] \
                    and args[groups_arg[packet]] != 1:
                self.grouped = True
            return out

    return Counter()


def build_torch(spec, in_shape):
    import torch

    import widenets as wn

    layers = []
    for kind, *a in spec:
        if kind == "dense":
            layers.append(wn.Dense(a[0], weight_std=a[1], bias_std=a[2]))
        elif kind == "conv":
            layers.append(wn.Conv2d(a[0], 3, padding="same", weight_std=a[1], bias_std=a[2]))
        else:
            layers.append({"relu": wn.Relu, "flatten": wn.Flatten,
                           "gap": wn.GlobalAvgPool}[kind]())
    return wn.serial(*layers).module(seed=0, in_shape=tuple(in_shape), dtype=torch.float32)


def jax_worker(args) -> dict:
    import jax
    import jax.numpy as jnp
    import neural_tangents as nt
    import numpy as np
    from neural_tangents import stax

    data = np.load(args.data)
    x = jnp.asarray(data["x"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    layers, params, index = [], [], 0
    for kind, *a in WORKLOADS[args.workload]:
        if kind == "dense":
            layers.append(stax.Dense(a[0], W_std=a[1], b_std=a[2]))
            w, b = data[f"w{index}"], data[f"b{index}"]
            params.append((jnp.asarray(w.T), jnp.asarray(b)))  # (out, in) -> (in, out)
            index += 1
        elif kind == "conv":
            layers.append(stax.Conv(a[0], (3, 3), padding="SAME", W_std=a[1], b_std=a[2]))
            w, b = data[f"w{index}"], data[f"b{index}"]
            params.append((jnp.asarray(w.transpose(2, 3, 1, 0)), jnp.asarray(b)))  # HWIO
            index += 1
        else:
            layers.append({"relu": stax.Relu, "flatten": stax.Flatten,
                           "gap": stax.GlobalAvgPool}[kind]())
            params.append(())
    _, apply_fn, _ = stax.serial(*layers)
    trace = (-1,) if args.output_axes == "trace" else ()
    fn = nt.empirical_ntk_fn(apply_fn, trace_axes=trace, vmap_axes=0,
                             implementation=NT_IMPLS[args.impl])
    if args.impl != "nt structured":  # full-batch Jacobians would not fit: blocks of 32
        fn = nt.batch(fn, batch_size=32)
    else:
        fn = jax.jit(fn)
    params = tuple(params)
    start, start_cpu = time.perf_counter(), time.process_time()
    kernel = np.asarray(jax.block_until_ready(fn(x, None, params)))
    first, first_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if first > args.slow:  # compilation included in this single run
        times, cpu, peak = [first], [first_cpu], None
    else:
        times, cpu, peak = timed_runs(lambda: jax.block_until_ready(fn(x, None, params)),
                                 args.budget, args.reps)
    if args.output_axes == "full":
        kernel = kernel.transpose(0, 2, 1, 3) if kernel.ndim == 4 else kernel
    np.save(args.out, kernel)
    a = jnp.ones((2048, 2048), jnp.float32)
    mm = jax.jit(lambda a: a @ a)
    mm(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(5):
        mm(a).block_until_ready()
    return {"times": times, "cpu": cpu, "memory": peak, "flops": None, "compile_and_first": first,
            "matmul_rate": 5 * 2 * 2048**3 / (time.perf_counter() - start)}


# -- driver -------------------------------------------------------------------------------
def prepare(n: int, directory: Path) -> tuple[Path, str]:
    """Inputs (MNIST when the loader finds it) and the networks' weights, as .npz files."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    try:
        import widenets.data

        x = widenets.data.load("mnist", n_train=n, n_test=1).x_train.float()
        source = f"{n} MNIST training images (standardised)"
    except Exception as err:
        x = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        source = f"{n} random 1x28x28 inputs (MNIST not loadable: {err})"
    files = {}
    for name, spec in WORKLOADS.items():
        model = build_torch(spec, x.shape[1:])
        arrays = {"x": x.numpy()}
        affine = [m for m in model.modules() if hasattr(m, "weight_std")]
        for i, m in enumerate(affine):
            arrays[f"w{i}"] = m.weight.detach().numpy()
            arrays[f"b{i}"] = m.bias.detach().numpy()
        files[name] = directory / f"{name}.npz"
        np.savez(files[name], **arrays)
    return directory, source


def run_row(workload, impl, args, directory: Path) -> dict | None:
    is_jax = impl in NT_IMPLS
    if is_jax and not NTREF.exists():
        return None
    python = str(NTREF) if is_jax else sys.executable
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": str(args.threads)}
    if is_jax and args.threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    out = directory / f"{workload}-{impl.replace(' ', '_')}.npy"
    cmd = [python, __file__, "--worker", "--workload", workload, "--impl", impl,
           "--data", str(directory / f"{workload}.npz"), "--out", str(out),
           "--threads", str(args.threads), "--output-axes", args.output_axes,
           "--reps", str(args.reps), "--budget", str(args.budget), "--slow", str(args.slow)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return {"error": tail[0] if tail else f"exit {proc.returncode}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["kernel"] = out
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workload", default="mlp")
    parser.add_argument("--impl", default="structured")
    parser.add_argument("--data")
    parser.add_argument("--out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed runs")
    parser.add_argument("--slow", type=float, default=60.0,
                        help="a first run longer than this is the only one")
    parser.add_argument("--output-axes", default="trace", choices=("trace", "full"))
    parser.add_argument("--quick", action="store_true",
                        help="only the structured rows (ours and neural-tangents')")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS),
                        choices=list(WORKLOADS))
    parser.add_argument("--impls", nargs="+", choices=[*TORCH_IMPLS, *NT_IMPLS],
                        help="rows to run (default: all; 'structured' is always run)")
    args = parser.parse_args()
    if args.worker:
        worker = jax_worker if args.impl in NT_IMPLS else torch_worker
        print(json.dumps(worker(args)))
        return
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        directory, source = prepare(args.n, Path(tmp))
        load = os.getloadavg()[0]
        print(f"inputs: {source}; float32; output_axes={args.output_axes}; "
              f"{args.threads} thread(s); load average {load:.1f} on {os.cpu_count()} cores")
        if not NTREF.exists():
            print(f"neural-tangents rows skipped: {NTREF} not found")
        impls = ["structured", "nt structured"] if args.quick else \
            [*TORCH_IMPLS, *NT_IMPLS]
        if args.impls:
            impls = ["structured", *[i for i in args.impls if i != "structured"]]
        for workload in args.workloads:
            rows = {impl: run_row(workload, impl, args, directory) for impl in impls}
            reference = np.load(rows["structured"]["kernel"])
            base = statistics.median(rows["structured"]["times"])
            base_cpu = statistics.median(rows["structured"]["cpu"])
            print(f"\n{workload}: {'implementation':<24}{'median s':>10}{'vs ours':>9}"
                  f"{'CPU s':>9}{'vs ours':>9}{'peak MB':>9}{'GFLOP':>9}{'% peak':>8}"
                  f"{'rel. diff':>11}")
            for impl, row in rows.items():
                if row is None:
                    continue
                if "error" in row:
                    print(f"     {impl:<24} failed: {row['error']}")
                    continue
                t, c = statistics.median(row["times"]), statistics.median(row["cpu"])
                mem = "-" if row["memory"] is None else f"{row['memory'] / 2**20:.0f}"
                flops = row["flops"]
                gflop = "-" if flops is None else f"{flops / 1e9:.1f}"
                frac = "-" if flops is None else f"{100 * flops / t / row['matmul_rate']:.0f}"
                kernel = np.load(row["kernel"])
                diff = np.abs(kernel - reference).max() / np.abs(reference).max()
                print(f"     {impl:<24}{t:>10.3f}{t / base:>8.1f}x{c:>9.3f}{c / base_cpu:>8.1f}x"
                      f"{mem:>9}{gflop:>9}{frac:>8}{diff:>11.1e}")
        print("\n'vs ours': time / widenets structured time (wall, then process CPU: on a "
              "loaded machine the CPU ratio is the reproducible one); '% peak': FLOP rate over the "
              "float32 matmul rate measured in the same process; GFLOP '-': not counted "
              "(JAX) or not countable (grouped convolutions); memory '-': a single run "
              f"longer than {args.slow:.0f} s (no separate timed run).")


if __name__ == "__main__":
    main()
