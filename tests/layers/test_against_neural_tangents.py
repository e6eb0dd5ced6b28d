"""Agreement with neural-tangents 0.6.5 (reference numbers made by tools/nt_reference.py).

neural-tangents is an independent implementation (JAX, NHWC); the inputs were drawn by that
script and stored beside its kernels.  Closed-form activations agree to float64 rounding; the
quadrature case (tanh with 64 nodes in both codes) agrees to 1e-10.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import widenets as wn

DATA = json.loads((Path(__file__).parent.parent / "data" / "nt_reference.json").read_text())
CASES = {case["name"]: case for case in DATA["cases"]}


def build(arch):
    layers = []
    for name, kwargs in arch:
        kwargs = dict(kwargs)
        if name == "Residual":
            kwargs["block"] = build(kwargs["block"])
        if name == "Parallel":
            layers.append(wn.parallel(*[build(branch) for branch in kwargs["layers"]]))
            continue
        layers.append(getattr(wn, name)(**kwargs))
    return wn.serial(*layers)


@pytest.mark.filterwarnings("ignore::widenets.WidenetsWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernels_match_neural_tangents(name):
    case = CASES[name]
    net = build(case["arch"])
    x1 = torch.tensor(case["x1"], dtype=torch.float64)
    x2 = torch.tensor(case["x2"], dtype=torch.float64)
    for x_b, suffix in ((None, "11"), (x2, "12")):
        k = net.kernel(x1, x_b)
        for kind in ("nngp", "ntk"):
            ref = np.array(case[kind + suffix])
            ours = getattr(k, kind).numpy()
            assert np.isfinite(ours).all()
            # nt's RectifiedMonomial is NaN at theta = 0; compare where it is finite
            ok = np.isfinite(ref)
            # Pairs of an input with itself: nt rounds the correlation to 1 - O(eps), and
            # sqrt(1 - rho^2) turns that into O(sqrt(eps)) ~ 1e-8 relative (we snap it to
            # the exact theta = 0; see test_closed_forms), so those get 1e-8.
            same = np.eye(*ref.shape, dtype=bool) if suffix == "11" else np.zeros_like(ok)
            # elsewhere float64 rounding through a handful of layers: 1e-12
            scale = np.abs(ref[ok]).max()
            for mask, tol in ((ok & ~same, 1e-12), (ok & same, 1e-8)):
                np.testing.assert_allclose(ours[mask], ref[mask], rtol=tol, atol=tol * scale)
