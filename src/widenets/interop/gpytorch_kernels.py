"""GPyTorch kernels of infinitely wide networks, with learnable ``weight_std``/``bias_std``.

``NNGPKernel`` and ``NTKKernel`` are :class:`gpytorch.kernels.Kernel` subclasses usable in an
``ExactGP``; ``weight_std`` and ``bias_std`` (shared by every Dense/Conv layer of the
architecture) are positive-constrained parameters of shape ``batch_shape``, learnt by
maximising the marginal likelihood.  The kernel is evaluated in float64 by widenets' engine and
returned in the inputs' dtype.  Its derivatives with respect to ``weight_std``/``bias_std``
are central finite differences (relative step 1e-6, error about 1e-9 relative), computed only
when a backward pass asks for them; inputs get no gradient.
"""

from __future__ import annotations

import torch
from gpytorch.constraints import Positive
from gpytorch.kernels import Kernel

from widenets.interop._common import network

REL_STEP = 1e-6
DIAG_BLOCK = 128


class _NetworkKernelFunction(torch.autograd.Function):
    """``K(weight_std, bias_std; x1, x2)`` with finite-difference gradients in the two stds."""

    @staticmethod
    def forward(ctx, weight_std, bias_std, x1, x2, owner, diag):
        ctx.save_for_backward(weight_std, bias_std)
        ctx.owner, ctx.args = owner, (x1, x2, diag)
        return owner._matrix(float(weight_std.detach()), float(bias_std.detach()), x1, x2, diag)

    @staticmethod
    def backward(ctx, grad_out):
        weight_std, bias_std = ctx.saved_tensors
        w, b = float(weight_std.detach()), float(bias_std.detach())
        grads = []
        for which in (0, 1):
            if not ctx.needs_input_grad[which]:
                grads.append(None)
                continue
            value = (w, b)[which]
            h = REL_STEP * max(abs(value), 1e-3)
            sides = []
            for sign in (1.0, -1.0):
                args = [w, b]
                args[which] = value + sign * h
                sides.append(ctx.owner._matrix(*args, *ctx.args))
            derivative = (sides[0] - sides[1]) / (2 * h)
            grads.append((grad_out * derivative).sum().reshape(()).to(weight_std.dtype))
        return grads[0], grads[1], None, None, None, None


class _NetworkKernel(Kernel):
    _get = "nngp"
    has_lengthscale = False

    def __init__(self, architecture="fc1-relu", *, weight_std: float = 1.0,
                 bias_std: float = 0.1, input_shape=None, weight_std_constraint=None,
                 bias_std_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.architecture = architecture
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        network(architecture)  # fail now on an unknown architecture
        for name, value, constraint in (("weight_std", weight_std, weight_std_constraint),
                                        ("bias_std", bias_std, bias_std_constraint)):
            constraint = Positive() if constraint is None else constraint
            self.register_parameter(f"raw_{name}",
                                    torch.nn.Parameter(torch.zeros(self.batch_shape)))
            self.register_constraint(f"raw_{name}", constraint)
            self._set(name, value)

    def _set(self, name, value):
        raw = getattr(self, f"raw_{name}")
        value = torch.as_tensor(value).to(raw)
        constraint = getattr(self, f"raw_{name}_constraint")
        self.initialize(**{f"raw_{name}": constraint.inverse_transform(value)})

    @property
    def weight_std(self) -> torch.Tensor:
        return self.raw_weight_std_constraint.transform(self.raw_weight_std)

    @weight_std.setter
    def weight_std(self, value):
        self._set("weight_std", value)

    @property
    def bias_std(self) -> torch.Tensor:
        return self.raw_bias_std_constraint.transform(self.raw_bias_std)

    @bias_std.setter
    def bias_std(self, value):
        self._set("bias_std", value)

    def _matrix(self, weight_std, bias_std, x1, x2, diag):
        net = network(self.architecture, self.input_shape, weight_std=weight_std,
                      bias_std=bias_std)
        a, b = self._reshape(x1), self._reshape(x2)
        if diag:  # pairs (a_i, b_i): the diagonal of square blocks
            return torch.cat([getattr(net.kernel(a[i:i + DIAG_BLOCK], b[i:i + DIAG_BLOCK],
                                                 get=self._get), self._get).diagonal()
                              for i in range(0, len(a), DIAG_BLOCK)])
        same = x1 is x2 or (x1.shape == x2.shape and torch.equal(x1, x2))
        return getattr(net.kernel(a, None if same else b, get=self._get), self._get)

    def _reshape(self, x):
        x = x.detach().to(torch.float64)
        return x if self.input_shape is None else x.reshape(len(x), *self.input_shape)

    def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
        if last_dim_is_batch:
            raise NotImplementedError("last_dim_is_batch is not supported by network kernels.")
        batch = torch.broadcast_shapes(x1.shape[:-2], x2.shape[:-2], self.batch_shape)
        x1 = x1.expand(*batch, *x1.shape[-2:]).reshape(-1, *x1.shape[-2:])
        x2 = x2.expand(*batch, *x2.shape[-2:]).reshape(-1, *x2.shape[-2:])
        ws = self.weight_std.expand(batch).reshape(-1)
        bs = self.bias_std.expand(batch).reshape(-1)
        out = [_NetworkKernelFunction.apply(ws[i], bs[i], x1[i], x2[i], self, diag)
               for i in range(len(x1))]
        out = torch.stack(out).reshape(*batch, *out[0].shape)
        return out.to(x1.dtype)


class NNGPKernel(_NetworkKernel):
    """NNGP kernel of ``architecture`` (preset name, file, dict or Layer; default
    ``"fc1-relu"``) with learnable, positive ``weight_std`` and ``bias_std`` shared by all its
    affine layers.

    Parameters
    ----------
    architecture : str, dict or Layer
    weight_std, bias_std : float
        Initial values.
    input_shape : tuple of int, optional
        Rows of the inputs are reshaped to this (for convolutional networks).
    weight_std_constraint, bias_std_constraint : gpytorch.constraints.Interval, optional
        Default :class:`gpytorch.constraints.Positive`.
    **kwargs
        ``batch_shape``, ``active_dims`` as for any GPyTorch kernel.

    Examples
    --------
    >>> import gpytorch
    >>> from widenets.interop.gpytorch_kernels import NNGPKernel
    >>> class GP(gpytorch.models.ExactGP):
    ...     def __init__(self, x, y, likelihood):
    ...         super().__init__(x, y, likelihood)
    ...         self.mean, self.kernel = gpytorch.means.ZeroMean(), NNGPKernel("fc2-relu")
    ...     def forward(self, x):
    ...         return gpytorch.distributions.MultivariateNormal(self.mean(x), self.kernel(x))
    """

    _get = "nngp"


class NTKKernel(_NetworkKernel):
    """Neural tangent kernel of ``architecture`` as a GP covariance (parameters as
    :class:`NNGPKernel`)."""

    _get = "ntk"


__all__ = ["NNGPKernel", "NTKKernel"]
