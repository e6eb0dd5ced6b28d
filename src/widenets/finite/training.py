"""Training finite networks: full-batch gradient descent on MSE, and minibatch SGD.

:func:`gradient_descent` is the discretisation that the NTK gradient-flow prediction
describes (kernels.md, "Exact predictions"; Lee et al. 2019): the loss is

    L(theta) = 1 / (2 N) * sum_{i, k} (f_k(x_i) - y_ik)^2,      N = n_train * n_outputs,

and each step is ``theta <- theta - eta * grad L``; after ``s`` steps the network is
compared with ``widenets.predict.gradient_flow(..., t=s, learning_rate=eta)`` (neural-tangents'
convention: time counts steps).  Several networks of one architecture (an ensemble over
initialisations) are trained together with ``torch.func.vmap``.

:func:`train_sgd` is plain minibatch SGD with momentum (cross-entropy, or MSE on centred one-hot
targets) for accuracy tables.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.validation import as_inputs

Tensor = torch.Tensor


@dataclasses.dataclass(frozen=True)
class GradientDescentResult:
    """Outputs of an ensemble trained by full-batch gradient descent.

    Attributes
    ----------
    steps : Tensor ``(n_records,)``, int64
        Step counts at which outputs were recorded (before that step's update).
    train_outputs : Tensor ``(n_models, n_records, n_train, n_outputs)``
    test_outputs : Tensor ``(n_models, n_records, n_test, n_outputs)`` or None
    train_loss : Tensor ``(n_models, n_records)``
        ``1/(2N) sum (f - y)^2``.
    """

    steps: Tensor
    train_outputs: Tensor
    test_outputs: Tensor | None
    train_loss: Tensor


def _check_positive(name: str, value, integer: bool = False):
    kind = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) \
            or value <= 0:
        raise HyperparameterError(expected(name, "a positive " + ("int" if integer
                                                                   else "finite number"),
                                           repr(value)))


def _records(record, steps: int) -> list[int]:
    if record is None:
        return [steps]
    out = sorted({int(r) for r in record})
    if not out or out[0] < 0 or out[-1] > steps:
        raise HyperparameterError(expected("record", f"step counts in 0..{steps}", record))
    return out


def gradient_descent(models: torch.nn.Module | Sequence[torch.nn.Module], x_train, y_train, *,
                     learning_rate: float, steps: int, x_test=None,
                     record: Sequence[int] | None = None) -> GradientDescentResult:
    """Train network(s) by full-batch gradient descent on the MSE loss ``1/(2N) sum (f-y)^2``.

    Parameters
    ----------
    models : Module or sequence of Modules
        One network, or several of the same architecture (e.g. ``[net.module(seed=s,
        widths=w, in_shape=...) for s in range(100)]``), trained side by side; their
        parameters are updated in place.
    x_train : Tensor ``(n_train, ...)``
    y_train : Tensor ``(n_train,)`` or ``(n_train, n_outputs)``
    learning_rate : float
        ``eta``; compare with ``gradient_flow(..., t=steps, learning_rate=eta)``.
    steps : int
        Number of updates.
    x_test : Tensor ``(n_test, ...)``, optional
    record : sequence of int, optional
        Step counts (``0..steps``) at which to record outputs; default ``[steps]``.

    Returns
    -------
    GradientDescentResult

    References
    ----------
    Lee et al. 2019, "Wide neural networks of any depth evolve as linear models under
    gradient descent", sec. 2 (eq. 3 with this MSE normalisation).
    """
    models = [models] if isinstance(models, torch.nn.Module) else list(models)
    if not models:
        raise HyperparameterError(expected("models", "at least one module", "none"))
    _check_positive("learning_rate", learning_rate)
    _check_positive("steps", steps, integer=True)
    records = _records(record, steps)
    dtype = next(models[0].parameters()).dtype if _materialised(models[0]) else torch.float64
    x_train = as_inputs("x_train", x_train, dtype)
    x_test = None if x_test is None else as_inputs("x_test", x_test, dtype, like=x_train)
    y = _targets(y_train, len(x_train), x_train)
    for m in models:
        with torch.no_grad():
            m(x_train[:1])  # materialises lazy parameters
    params, buffers = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    def loss(p, b):
        out = forward(p, b, x_train).reshape(y.shape)
        return 0.5 * ((out - y) ** 2).sum() / y.numel()

    grad_fn = vmap(grad(loss))
    out_fn = vmap(forward, in_dims=(0, 0, None))
    train_out, test_out = [], []
    for step in range(steps + 1):
        if step in records:
            with torch.no_grad():
                train_out.append(out_fn(params, buffers, x_train).reshape(len(models), *y.shape))
                if x_test is not None:
                    test_out.append(out_fn(params, buffers, x_test).reshape(
                        len(models), len(x_test), y.shape[1]))
        if step == steps:
            break
        grads = grad_fn(params, buffers)
        with torch.no_grad():
            for k in params:
                params[k] -= learning_rate * grads[k]
    _write_back(models, params)
    train = torch.stack(train_out, 1)
    return GradientDescentResult(
        steps=torch.tensor(records), train_outputs=train,
        test_outputs=torch.stack(test_out, 1) if x_test is not None else None,
        train_loss=0.5 * ((train - y) ** 2).sum(dim=(-1, -2)) / y.numel())


def _materialised(model: torch.nn.Module) -> bool:
    from torch.nn.parameter import UninitializedParameter

    params = list(model.parameters())
    return bool(params) and not any(isinstance(p, UninitializedParameter) for p in params)


def _write_back(models, params) -> None:
    with torch.no_grad():
        for i, m in enumerate(models):
            for name, p in m.named_parameters():
                p.copy_(params[name][i])


def _targets(y, n: int, like: Tensor) -> Tensor:
    y = torch.as_tensor(y).to(dtype=like.dtype, device=like.device)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n:
        raise ShapeError(expected("y_train", f"of shape ({n},) or ({n}, n_outputs)",
                                  tuple(y.shape)))
    return y


@dataclasses.dataclass(frozen=True)
class SGDResult:
    """Mean training loss of each epoch, ``(epochs,)``."""

    epoch_loss: Tensor


LOSSES = ("cross_entropy", "mse")


def train_sgd(model: torch.nn.Module, x_train, labels, *, loss: str = "cross_entropy",
              epochs: int = 20, batch_size: int = 128, learning_rate: float = 0.1,
              momentum: float = 0.9, weight_decay: float = 0.0, cosine: bool = True,
              seed: int = 0, centre: float | None = None) -> SGDResult:
    """Train a classifier by minibatch SGD with momentum (in place).

    Parameters
    ----------
    model : Module
        Output ``(n, n_classes)`` logits (or regression outputs for ``loss="mse"``).
    x_train : Tensor ``(n, ...)``
    labels : Tensor ``(n,)`` of int
    loss : {"cross_entropy", "mse"}
        ``"mse"`` regresses on one-hot targets minus ``centre`` (default ``1/n_classes``),
        as the kernel classifiers do, with loss ``1/2 mean (f - y)^2``.
    epochs, batch_size, learning_rate, momentum, weight_decay
        The usual; ``cosine`` decays the learning rate to 0 along a half cosine.
    seed : int
        Seeds the order of the minibatches.

    Returns
    -------
    SGDResult

    Raises
    ------
    HyperparameterError
        Bad arguments, or the loss diverged (lower ``learning_rate``).
    """
    if loss not in LOSSES:
        raise HyperparameterError(expected("loss", f"one of {LOSSES}", repr(loss)))
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        _check_positive(name, value, integer=True)
    _check_positive("learning_rate", learning_rate)
    x_train = as_inputs("x_train", x_train, torch.float64)
    labels = torch.as_tensor(labels).to(torch.int64)
    if labels.shape != (len(x_train),):
        raise ShapeError(expected("labels", f"of shape ({len(x_train)},)", tuple(labels.shape)))
    with torch.no_grad():
        out = model(x_train[:1].to(_dtype_of(model)))
    n_classes = out.shape[1]
    x_train = x_train.to(_dtype_of(model))
    targets = torch.nn.functional.one_hot(labels, n_classes).to(x_train.dtype) - (
        1.0 / n_classes if centre is None else centre)
    opt = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum,
                          weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / (epochs * steps_per_epoch)))
        if cosine else 1.0)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(epochs):
        order, total = torch.randperm(len(x_train), generator=gen), 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            out = model(x_train[idx])
            if loss == "cross_entropy":
                value = torch.nn.functional.cross_entropy(out, labels[idx])
            else:
                value = 0.5 * ((out - targets[idx]) ** 2).mean()
            if not torch.isfinite(value):
                raise HyperparameterError(
                    f"SGD diverged (loss {float(value.detach())} in epoch {epoch}); lower "
                    f"`learning_rate` (got {learning_rate}).")
            opt.zero_grad()
            value.backward()
            opt.step()
            sched.step()
            total += float(value.detach()) * len(idx)
        losses.append(total / len(x_train))
    return SGDResult(epoch_loss=torch.tensor(losses))


def _dtype_of(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point() and not isinstance(p, torch.nn.parameter.UninitializedParameter):
            return p.dtype
    return torch.float64


@torch.no_grad()
def predict_labels(model: torch.nn.Module, x, *, batch_size: int = 1024) -> Tensor:
    """Argmax of the model's outputs, computed in batches, as int64 ``(n,)``."""
    x = as_inputs("x", x, _dtype_of(model))
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
