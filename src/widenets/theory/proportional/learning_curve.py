"""The seed paper's Figure 1 as data: test error against hidden width (spec §7, §9).

For each training-set size P and readout prior lambda_1 the proportional theory gives a line
of test errors over a dense grid of widths N_1, the infinite-width GP a horizontal line, and
networks sampled by Langevin dynamics (``widenets.finite.langevin``) points with Monte Carlo
standard errors.  :func:`learning_curve` returns all of it as rows; :func:`findings` checks
the qualitative predictions the paper tests; :mod:`.figures` draws it.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable

import numpy as np

from widenets.errors import HyperparameterError, expected
from widenets.theory.proportional.architecture import parse_network
from widenets.theory.proportional.model import ProportionalTheory, proportional
from widenets.theory.proportional.tasks import two_class_task


@dataclasses.dataclass(frozen=True)
class LearningCurveSettings:
    """Everything that fixes a learning-curve run (written beside its outputs)."""

    data: str = "mnist"
    arch: str = "1hl-erf"
    widths: tuple[int, ...] = (50, 100, 200, 500, 1000)
    n_train: tuple[int, ...] = (500,)
    readout_priors: tuple[float, ...] = (1.0, 10.0, 100.0)
    input_prior: float = 1.0
    temperature: float = 1e-3
    n_test: int = 1000
    classes: tuple[int, int] = (0, 1)
    pool: int = 1
    langevin_widths: tuple[int, ...] = ()
    langevin_priors: tuple[float, ...] = ()
    langevin_n_train: tuple[int, ...] = ()
    langevin_steps: int = 4000
    langevin_chains: int = 4
    seed: int = 0
    data_dir: str | None = None

    def __post_init__(self):
        for name in ("widths", "n_train", "langevin_widths", "langevin_n_train"):
            values = getattr(self, name)
            if (name in ("widths", "n_train") and not values) or any(
                    isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise HyperparameterError(expected(name, "positive integers", values))
        for name in ("readout_priors", "langevin_priors"):
            values = getattr(self, name)
            if any(not (isinstance(v, int | float) and math.isfinite(v) and v > 0)
                   for v in values):
                raise HyperparameterError(expected(name, "positive numbers", values))
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise HyperparameterError(expected("temperature", "a finite number > 0",
                                               self.temperature))
        if not (isinstance(self.input_prior, int | float) and math.isfinite(self.input_prior)
                and self.input_prior > 0):
            raise HyperparameterError(expected("input_prior", "a finite number > 0",
                                               self.input_prior))
        # checked here, before the theory lines, not when the first chain starts
        for name in ("n_test", "pool", "langevin_steps", "langevin_chains"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HyperparameterError(expected(name, "a positive int", repr(value)))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise HyperparameterError(expected("seed", "an int >= 0", repr(self.seed)))
        if len(self.classes) != 2 or self.classes[0] == self.classes[1] \
                or not all(isinstance(c, int) and c >= 0 for c in self.classes):
            raise HyperparameterError(expected("classes", "two different class indices",
                                               self.classes))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LearningCurve:
    """Rows (one dict per point: theory, infinite width or Langevin) and what they show."""

    settings: LearningCurveSettings
    rows: list[dict]
    findings: dict
    task: str
    warnings: list[str]


def _priors(arch, readout_prior: float, input_prior: float) -> list[float]:
    return [input_prior, *arch.priors[1:-1], readout_prior]


def _width_grid(widths) -> list[int]:
    grid = np.geomspace(min(widths), max(widths), 25).round().astype(int)
    return sorted(set(grid.tolist()) | set(widths))


def learning_curve(settings: LearningCurveSettings,
                   echo: Callable[[str], None] = lambda s: None) -> LearningCurve:
    """Compute the theory lines, the infinite-width lines and the Langevin points."""
    from widenets.presets import architecture

    net = architecture(settings.arch)
    base = parse_network(net)
    rows, notes = [], []
    # every task is loaded (and so checked) before the first line is computed
    tasks = [two_class_task(settings.data, n_train, settings.n_test, classes=settings.classes,
                            pool=settings.pool, seed=settings.seed, data_dir=settings.data_dir)
             for n_train in settings.n_train]
    for n_train, task in zip(settings.n_train, tasks, strict=True):
        for lam in settings.readout_priors:
            priors = _priors(base, lam, settings.input_prior)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                first = proportional(net, task.x_train, task.y_train,
                                     temperature=settings.temperature,
                                     widths=[settings.widths[0]] * base.depth, priors=priors)
            notes += [f"P={n_train}, lambda_1={lam:g}: {w.message}" for w in caught]
            rows += _theory_rows(first, task, n_train, lam, settings)
            echo(f"theory P={n_train} lambda_1={lam:g}: r = {first.r:.4g}")
            if (lam in settings.langevin_priors or not settings.langevin_priors) and (
                    n_train in settings.langevin_n_train or not settings.langevin_n_train):
                for width in settings.langevin_widths:
                    rows.append(_langevin_row(first, task, n_train, lam, width, settings, echo))
    return LearningCurve(settings, rows, findings(rows), task.description,
                         sorted(set(notes)))


def _theory_rows(first: ProportionalTheory, task, n_train, lam, settings) -> list[dict]:
    out = []
    arch = first.architecture
    for width in _width_grid(settings.widths):
        th = ProportionalTheory(dataclasses.replace(arch, widths=(width,) * arch.depth),
                                first.x_train, first.y_train, first.temperature,
                                mean_correction=None, kernel=first.kernel)
        out.append(_theory_row(th, task, n_train, lam, width, "theory"))
    out.append(_theory_row(first.infinite_width(), task, n_train, lam, None, "infinite"))
    for width in np.geomspace(n_train / 10, 1000 * n_train, 25).round().astype(int):
        th = ProportionalTheory(dataclasses.replace(arch, widths=(int(width),) * arch.depth),
                                first.x_train, first.y_train, first.temperature,
                                mean_correction=None, kernel=first.kernel)
        out.append(dict(kind="qbar_sweep", n_train=n_train, readout_prior=lam,
                        width=int(width), alpha=n_train / int(width), r=th.r,
                        qbar=th.order_parameters.readout))
    return out


def _theory_row(th, task, n_train, lam, width, kind) -> dict:
    test, train = th.test_error(task.x_test, task.y_test), th.train_error()
    op = th.order_parameters
    return dict(kind=kind, n_train=n_train, readout_prior=lam, width=width,
                alpha=None if width is None else n_train / width, r=op.r,
                test_error=test.total, test_error_se=0.0, test_bias_squared=test.bias_squared,
                test_variance=test.variance, train_error=train.total, train_error_se=0.0,
                qbar=op.readout, qbar_se=0.0)


def _langevin_row(first, task, n_train, lam, width, settings, echo) -> dict:
    from widenets.finite.langevin import sample_posterior

    arch = dataclasses.replace(first.architecture, widths=(width,) * first.architecture.depth)
    th = ProportionalTheory(arch, first.x_train, first.y_train, first.temperature,
                            mean_correction=None, kernel=first.kernel)
    samples = sample_posterior(arch.network(), task.x_train, task.y_train,
                               temperature=settings.temperature,
                               n_steps=settings.langevin_steps, priors=list(arch.priors),
                               x_test=task.x_test, y_test=task.y_test,
                               n_chains=settings.langevin_chains, reprioritize=True,
                               seed=settings.seed)
    summary = samples.summary()
    row = dict(kind="langevin", n_train=n_train, readout_prior=lam, width=width,
               alpha=n_train / width, r=th.r,
               test_error=summary["test_mse"][0], test_error_se=summary["test_mse"][1],
               train_error=summary["train_mse"][0], train_error_se=summary["train_mse"][1],
               qbar=summary["order_parameter"][0], qbar_se=summary["order_parameter"][1],
               ess_min=float(min(samples.ess.values())),
               rhat_max=float(max(samples.rhat.values())),
               converged=bool(max(samples.rhat.values()) < 1.1
                              and min(samples.ess.values()) >= 100),
               acceptance=samples.acceptance_rate, seconds=samples.seconds)
    theory = _theory_row(th, task, n_train, lam, width, "theory")
    for key in ("test_error", "train_error", "qbar"):
        row[f"theory_{key}"] = theory[key]
        row[f"z_{key}"] = (row[key] - theory[key]) / row[f"{key}_se"]
    if not row["converged"]:
        echo(f"warning: Langevin at P={n_train}, lambda_1={lam:g}, N_1={width} has not "
             f"converged (R-hat {row['rhat_max']:.3g}, ESS {row['ess_min']:.3g}); raise "
             "--langevin-steps")
    echo(f"langevin P={n_train} lambda_1={lam:g} N_1={width}: test {row['test_error']:.4g} "
         f"+- {row['test_error_se']:.2g} (theory {theory['test_error']:.4g}), "
         f"Qbar {row['qbar']:.4g} +- {row['qbar_se']:.2g} (theory {theory['qbar']:.4g}), "
         f"{row['seconds']:.0f} s")
    return row


def findings(rows: list[dict]) -> dict:
    """The paper's qualitative predictions, checked on the theory lines (and on the Langevin
    points where there are some).

    * ``lambda_lowers_error``: at every (P, N_1), test error decreasing in lambda_1;
    * ``width_spread``: max - min of the test error over N_1, per lambda_1 (it should shrink
      at large lambda_1);
    * ``finite_vs_infinite``: per (P, lambda_1), r and whether every finite width beats the
      infinite one (T = 0 predicts: exactly when r < 1);
    * ``qbar_to_one``: |Qbar - 1| decreasing as alpha -> 0 (growing width), and Qbar at
      alpha = 1e-3.
    """
    theory = [r for r in rows if r["kind"] == "theory"]
    infinite = {(r["n_train"], r["readout_prior"]): r for r in rows if r["kind"] == "infinite"}
    out: dict = {"lambda_lowers_error": [], "width_spread": [], "finite_vs_infinite": [],
                 "qbar_to_one": []}
    for p in sorted({r["n_train"] for r in theory}):
        lams = sorted({r["readout_prior"] for r in theory if r["n_train"] == p})
        widths = sorted({r["width"] for r in theory if r["n_train"] == p})
        table = {(r["readout_prior"], r["width"]): r for r in theory if r["n_train"] == p}
        monotone = [all(table[(a, w)]["test_error"] > table[(b, w)]["test_error"]
                        for a, b in zip(lams, lams[1:], strict=False)) for w in widths]
        out["lambda_lowers_error"].append(dict(n_train=p, holds_at_every_width=all(monotone),
                                               fraction_of_widths=float(np.mean(monotone))))
        for lam in lams:
            errors = np.array([table[(lam, w)]["test_error"] for w in widths])
            qbars = np.array([table[(lam, w)]["qbar"] for w in widths])
            inf = infinite[(p, lam)]
            r = inf["r"]
            out["width_spread"].append(dict(n_train=p, readout_prior=lam,
                                            spread=float(errors.max() - errors.min())))
            beats = bool(np.all(errors < inf["test_error"]))
            worse = bool(np.all(errors > inf["test_error"]))
            out["finite_vs_infinite"].append(dict(
                n_train=p, readout_prior=lam, r=r, finite_beats_infinite=beats,
                finite_worse_than_infinite=worse,
                as_predicted=(beats and r < 1) or (worse and r > 1)))
            sweep = sorted((r for r in rows if r["kind"] == "qbar_sweep" and r["n_train"] == p
                            and r["readout_prior"] == lam), key=lambda r: r["width"])
            out["qbar_to_one"].append(dict(
                n_train=p, readout_prior=lam, qbar_smallest_width=float(qbars[0]),
                qbar_largest_width=float(qbars[-1]),
                qbar_smallest_alpha=sweep[-1]["qbar"] if sweep else None,
                smallest_alpha=sweep[-1]["alpha"] if sweep else None,
                monotone=bool(np.all(np.diff(np.abs(qbars - 1)) <= 1e-12))))
    langevin = [r for r in rows if r["kind"] == "langevin"]
    if langevin:
        keys = ("n_train", "readout_prior", "width", "converged", "z_test_error",
                "z_train_error", "z_qbar")
        out["langevin_z"] = [{k: r[k] for k in keys} for r in langevin]
    return out
