"""Effective samples per second of Langevin (MALA) with and without repriorisation.

A one-hidden-layer erf network (input dimension 8, weight_std 1.5, no biases) on 32 noisy
samples of an erf teacher, T = 0.01 (the noise variance of Hron et al. 2022's default
experiment), 4 chains, step size adapted in burn-in (acceptance 0.574).  Both runs sample the
same posterior; the repriorised one (Hron et al. 2022; widenets.finite.reprioritization) moves
the readout in coordinates where its conditional posterior is N(0, I).  ESS is ArviZ's bulk
ESS of the test predictions (median over 5 test points), of the readout order parameter and
the minimum over all recorded observables; the standard run gets ``--ratio`` times more steps
so that its ESS is large enough to be estimated (ESS per second does not depend on the run
length once the chains have mixed).  Time is both the wall-clock sampling time the sampler
reports and the process CPU time of the whole call (one thread: on a shared, loaded machine
the CPU time is the reproducible one).

    .venv/bin/python benchmarks/bench_repriorisation.py [--widths 32 128 512] [--steps 4000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import widenets as wn
from widenets.finite.langevin import sample_posterior


def problem(n_train=32, n_test=5, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, dim, generator=g, dtype=torch.float64)
    teacher = torch.randn(dim, generator=g, dtype=torch.float64)
    y = torch.erf(x @ teacher / dim**0.5) \
        + 0.1 * torch.randn(n_train + n_test, generator=g, dtype=torch.float64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def measure(width: int, steps: int, reprioritize: bool, temperature: float = 0.01,
            seed: int = 0) -> dict:
    x, y, x0, y0 = problem()
    net = wn.serial(wn.Dense(width, weight_std=1.5), wn.Erf(), wn.Dense(1))
    cpu = time.process_time()
    s = sample_posterior(net, x, y, temperature=temperature, n_steps=steps,
                         burn_in=steps // 4, thin=5, x_test=x0, y_test=y0, n_chains=4,
                         seed=seed, reprioritize=reprioritize)
    cpu = time.process_time() - cpu  # with the ArviZ diagnostics: milliseconds after warm_up
    ess = {"test prediction": s.ess["test_prediction_median"],
           "order parameter": s.ess["order_parameter"], "min": min(s.ess.values())}
    return {"seconds": s.seconds, "cpu_seconds": cpu, "ess": ess, "step_size": s.step_size,
            "acceptance": s.acceptance_rate, "gradients": s.n_gradients * s.n_chains}


def warm_up():
    """Pay the one-off costs (ArviZ import, torch.func's first calls) before timing."""
    for reprioritize in (False, True):
        measure(width=4, steps=80, reprioritize=reprioritize)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--steps", type=int, default=4000, help="repriorised run")
    parser.add_argument("--ratio", type=int, default=4, help="standard run: ratio x steps")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    print(f"{'width':>6} {'run':<12}{'steps':>7}{'eps':>9}{'acc':>6}{'wall s':>8}{'CPU s':>7}"
          f"{'ESS pred':>10}{'ESS Qbar':>10}{'ESS min':>9}{'ESS/s pred':>12}{'ESS/s min':>11}")
    for width in args.widths:
        rows = {"standard": measure(width, args.steps * args.ratio, False),
                "repriorised": measure(width, args.steps, True)}
        for name, r in rows.items():
            e, t = r["ess"], r["seconds"]
            steps = args.steps * (args.ratio if name == "standard" else 1)
            print(f"{width:>6} {name:<12}{steps:>7}"
                  f"{r['step_size']:>9.2g}{r['acceptance']:>6.2f}{t:>8.1f}"
                  f"{r['cpu_seconds']:>7.1f}"
                  f"{e['test prediction']:>10.0f}{e['order parameter']:>10.0f}{e['min']:>9.0f}"
                  f"{e['test prediction'] / t:>12.2f}{e['min'] / t:>11.2f}")
        std, rep = rows["standard"], rows["repriorised"]
        for clock in ("seconds", "cpu_seconds"):
            factors = {key: (rep["ess"][key] / rep[clock]) / (std["ess"][key] / std[clock])
                       for key in std["ess"]}
            print(f"{width:>6} ESS/{'wall' if clock == 'seconds' else 'CPU'} s factor: "
                  + ", ".join(f"{k} {v:.1f}x" for k, v in factors.items()))


if __name__ == "__main__":
    main()
