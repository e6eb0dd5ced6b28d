"""neural-tangents side of the kernel benchmarks: a worker run with ``../ntref/bin/python``.

Run with ``--x32`` for float32 (x64 mode off), without it for float64.  Reads one JSON
command per line on stdin and answers one JSON line on stdout, so that the
benchmark can interleave its widenets and neural-tangents repetitions in one run (the load
of a shared machine then hits both alike).  Commands::

    {"op": "setup", "name": ..., "arch": [[kind, *args], ...], "dtype": "float64",
     "x1": "a.npy", "x2": null | "b.npy", "batch_size": null | int}
    {"op": "run", "name": ..., "save": null | "out.npz"}   -> {"seconds": ...}
    {"op": "quit"}

``arch`` kinds: ``dense`` (width, W_std, b_std), ``conv`` (channels, W_std, b_std; 3x3 SAME),
``relu``, ``gap``, ``flatten``.  Images arrive NCHW and are transposed to nt's NHWC.  The
kernel function is jitted (and wrapped in ``nt.batch`` when ``batch_size`` is given); the
first run compiles and is reported separately by the caller.  Never imported by widenets.
"""

import json
import sys
import time

import jax

# float64 needs x64 mode; in x64 mode float32 inputs are promoted by Python-float constants,
# so float32 runs get a worker of their own without it
jax.config.update("jax_enable_x64", "--x32" not in sys.argv)
import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402


def build(arch):
    layers = []
    for kind, *args in arch:
        if kind == "dense":
            layers.append(stax.Dense(args[0], W_std=args[1], b_std=args[2]))
        elif kind == "conv":
            layers.append(stax.Conv(args[0], (3, 3), padding="SAME", W_std=args[1],
                                    b_std=args[2]))
        elif kind == "relu":
            layers.append(stax.Relu())
        elif kind == "gap":
            layers.append(stax.GlobalAvgPool())
        elif kind == "flatten":
            layers.append(stax.Flatten())
        else:
            raise ValueError(kind)
    return stax.serial(*layers)[2]


def load(path, dtype):
    if path is None:
        return None
    x = np.load(path).astype(dtype)
    if x.ndim == 4:
        x = np.transpose(x, (0, 2, 3, 1))  # NCHW -> NHWC
    return jnp.asarray(x)


def main():
    cases = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        if cmd["op"] == "setup":
            kernel_fn = build(cmd["arch"])
            if cmd.get("batch_size"):
                kernel_fn = nt.batch(kernel_fn, batch_size=cmd["batch_size"],
                                     store_on_device=False)
            else:
                kernel_fn = jax.jit(kernel_fn, static_argnames="get")
            cases[cmd["name"]] = (kernel_fn, load(cmd["x1"], cmd["dtype"]),
                                  load(cmd["x2"], cmd["dtype"]))
            answer = {"ok": True, "devices": str(jax.devices()), "nt": nt.__version__,
                      "jax": jax.__version__}
        else:
            kernel_fn, x1, x2 = cases[cmd["name"]]
            start, cpu = time.perf_counter(), time.process_time()
            k = kernel_fn(x1, x2, get=("nngp", "ntk"))
            nngp, ntk = (np.asarray(jax.block_until_ready(v)) for v in (k.nngp, k.ntk))
            # CPU seconds of all this process's threads: on a shared machine the fair measure
            # of work done when both codes run on one thread
            answer = {"seconds": time.perf_counter() - start,
                      "cpu_seconds": time.process_time() - cpu}
            if cmd.get("save"):
                np.savez(cmd["save"], nngp=nngp, ntk=ntk)
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
