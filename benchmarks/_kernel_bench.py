"""Shared parts of the infinite-width kernel benchmarks (bench_kernels_mlp, bench_cnn_gap,
bench_scale): this machine's limits, interleaved timing against neural-tangents, tables.

Limits are measured in the same run: the float32/float64 matrix-multiply rate (the FLOP
peak any kernel code can hope for on these cores), a stream-like copy bandwidth, and the
throughput of the transcendental functions a dual activation needs (torch's vectorised
``atan2``/``acos``/``sqrt`` on data that stays in cache, and the hardware's vector square root
and division measured by ``_divider.cpp``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
NTREF = ROOT.parent / "ntref" / "bin" / "python"


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on "
            f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} "
            "threads")


def median_time(fn, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def machine_limits(threads: int | None = None, clock=time.perf_counter) -> dict[str, float]:
    """Measured peaks with torch's threads: FLOP/s of matmul (f32, f64), copy bandwidth in
    B/s, and transcendental throughputs in evaluations/s (in cache; one core's rate times
    the number of threads).  ``clock=time.process_time`` with one thread gives the rates per
    CPU second, the limit to compare CPU times with on a shared machine."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    cores = torch.get_num_threads()
    out = {}
    try:
        for dtype, name in ((torch.float32, "f32"), (torch.float64, "f64")):
            a = torch.rand(1536, 1536, dtype=dtype)
            b = torch.rand(1536, 1536, dtype=dtype)
            a @ b
            out[f"matmul_{name}"] = 2 * 1536**3 / median_time(lambda: a @ b, 7, clock)  # noqa: B023
        x = torch.rand(2**25 // 8, dtype=torch.float64)  # 32 MB: beyond the caches
        y = torch.empty_like(x)
        out["copy_bandwidth"] = 2 * x.numel() * 8 / median_time(lambda: y.copy_(x), 7, clock)
        # one core at a time (a parallel region on a busy machine waits for its slowest
        # thread), times the number of threads the kernels use
        torch.set_num_threads(1)
        for dtype, name in ((torch.float32, "f32"), (torch.float64, "f64")):
            u = torch.rand(2**14, dtype=dtype) * 2 - 1  # 64-128 KB: in L2
            v = torch.rand(2**14, dtype=dtype)
            o = torch.empty_like(u)
            for fn_name, fn in (("atan2", lambda: torch.atan2(v, u, out=o)),  # noqa: B023
                                ("acos", lambda: torch.acos(u, out=o)),  # noqa: B023
                                ("sqrt", lambda: torch.sqrt(v, out=o))):  # noqa: B023
                def reps(fn=fn):
                    for _ in range(50):
                        fn()
                out[f"{fn_name}_{name}"] = 50 * u.numel() * cores / median_time(reps, 5, clock)
        # the hardware's vector square root and division (seconds per element, all threads)
        out.update({f"{k}_seconds": v / cores for k, v in divider_seconds().items()})
    finally:
        torch.set_num_threads(old)
    return out


def divider_seconds() -> dict[str, float]:
    """Seconds per element of the vector square root and division in L1 (``_divider.cpp``,
    built like widenets' native stage), one core: ``{"sqrt_f32": ..., "div_f64": ...}``;
    empty if it cannot be built."""
    import ctypes

    try:
        from torch._inductor.codecache import CppCodeCache

        lib = CppCodeCache.load((Path(__file__).parent / "_divider.cpp").read_text())
    except Exception as err:  # no compiler: the limits then count FLOPs only
        print(f"divider throughput not measured ({type(err).__name__}: {err})")
        return {}
    out = (ctypes.c_double * 4)()
    lib.divider_ns.argtypes = [ctypes.c_int64, ctypes.c_void_p]
    best = [float("inf")] * 4
    for _ in range(5):
        lib.divider_ns(20000, ctypes.addressof(out))
        best = [min(b, o) for b, o in zip(best, out, strict=True)]
    return {name: ns * 1e-9 for name, ns in
            zip(("sqrt_f32", "div_f32", "sqrt_f64", "div_f64"), best, strict=True)}


def describe_limits(limits: dict[str, float]) -> str:
    def rates(name):
        return f"{limits[name + '_f32'] / 1e9:.2f}/{limits[name + '_f64'] / 1e9:.2f} G/s"

    return (f"this machine: matmul {limits['matmul_f32'] / 1e9:.0f} GFLOP/s f32, "
            f"{limits['matmul_f64'] / 1e9:.0f} GFLOP/s f64; "
            f"copy {limits['copy_bandwidth'] / 1e9:.1f} GB/s; atan2 {rates('atan2')}, "
            f"acos {rates('acos')}, sqrt {rates('sqrt')} (f32/f64, eager torch)"
            + ("" if "sqrt_f64_seconds" not in limits else
               "; vector sqrt/div in L1 " + ", ".join(
                   f"{1e9 * limits[f'sqrt_{d}_seconds']:.2f}/{1e9 * limits[f'div_{d}_seconds']:.2f}"
                   f" ns ({d})" for d in ("f32", "f64"))))


class NeuralTangents:
    """neural-tangents 0.6.5 in ``../ntref`` as a worker process (``_nt_kernels.py``): x64
    mode for float64, a separate worker without it for float32; ``available = False`` with
    the reason when it is not installed."""

    def __init__(self, dtype: str = "float64"):
        self.available, self.reason, self.proc = NTREF.exists(), "", None
        self.last_cpu = float("nan")  # CPU seconds of the last run
        self.tmp = tempfile.TemporaryDirectory()
        if not self.available:
            self.reason = f"{NTREF} not found: neural-tangents rows skipped"
            return
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
        pin = None
        if torch.get_num_threads() == 1:  # compare like with like: XLA on one thread too
            env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1")
            # and on one core: with these flags alone its process still used ~1.45 cores
            # (CPU 0.61 s in 0.42 s of wall time for the 2000x784 MLP kernels)
            pin = _one_core
        flags = ["--x32"] if dtype == "float32" else []
        self.proc = subprocess.Popen([str(NTREF), "-u", str(Path(__file__).parent /
                                                              "_nt_kernels.py"), *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env,
                                     preexec_fn=pin)

    def _ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the neural-tangents worker died")
        return json.loads(line)

    def setup(self, name: str, arch, x1: np.ndarray, x2: np.ndarray | None, dtype: str,
              batch_size: int | None = None) -> dict:
        paths = []
        for i, x in enumerate((x1, x2)):
            if x is None:
                paths.append(None)
                continue
            path = os.path.join(self.tmp.name, f"{name}-{i}.npy")
            np.save(path, x)
            paths.append(path)
        return self._ask(op="setup", name=name, arch=arch, dtype=dtype, x1=paths[0],
                         x2=paths[1], batch_size=batch_size)

    def run(self, name: str, save: bool = False):
        """Seconds of one run (and the kernels when ``save``)."""
        path = os.path.join(self.tmp.name, f"{name}-out.npz") if save else None
        answer = self._ask(op="run", name=name, save=path)
        seconds, self.last_cpu = answer["seconds"], answer.get("cpu_seconds", float("nan"))
        if not save:
            return seconds
        with np.load(path) as k:
            return seconds, {"nngp": k["nngp"], "ntk": k["ntk"]}

    def close(self):
        if self.proc is not None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.tmp.cleanup()


def _one_core() -> None:
    """Pin the calling process (and the threads it will start) to one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def setup(threads: int | None) -> tuple[dict[str, float], dict[str, float] | None]:
    """Set torch's threads, print the load and this machine's limits per wall second and, with
    one thread, per CPU second (several threads' CPU time includes their waiting); returns
    ``(limits, cpu_limits or None)``."""
    if threads:
        torch.set_num_threads(threads)
    if torch.get_num_threads() == 1:  # one core each, as the neural-tangents worker
        _one_core()
    print(load_note())
    limits = machine_limits()
    print(describe_limits(limits))
    cpu_limits = machine_limits(clock=time.process_time) \
        if torch.get_num_threads() == 1 else None
    if cpu_limits:
        print("per CPU second: " + describe_limits(cpu_limits).split(": ", 1)[1])
    return limits, cpu_limits


def interleaved(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median ``(wall seconds, CPU seconds)`` of each callable, alternating repetitions so
    that the machine's load falls on all alike.  A callable returns None to be timed here
    (CPU time of this process), or its own ``(wall, cpu)``.  Call each once before
    (warm-up: compilation).  With one thread per code, CPU seconds measure the work done
    independently of how much of the machine the other users leave."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, cpu = time.perf_counter(), time.process_time()
            got = fn()
            times[name].append((time.perf_counter() - start, time.process_time() - cpu)
                               if got is None else got)
    return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for name, t in times.items()}


def relative_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)
