"""``widenets.empirical_ntk`` and ``widenets.monte_carlo_kernel`` are top-level, and importing
``widenets`` still loads none of the optional libraries the sampler uses."""

import subprocess
import sys

import pytest
import torch

import widenets as wn
from widenets.finite.empirical import empirical_ntk
from widenets.finite.monte_carlo import monte_carlo_kernel


def test_exported_from_the_top_level():
    assert wn.empirical_ntk is empirical_ntk and wn.monte_carlo_kernel is monte_carlo_kernel
    assert {"empirical_ntk", "monte_carlo_kernel"} <= set(wn.__all__)
    model = wn.serial(wn.Dense(3), wn.Relu(), wn.Dense(1)).module(seed=0, in_shape=(2,))
    assert wn.empirical_ntk(model, torch.ones(2, 2, dtype=torch.float64)).shape == (2, 2)


@pytest.mark.slow  # a fresh interpreter: ~3.5 s of CPU importing torch, 10-17 s at load 8
def test_import_stays_light():
    optional = ("arviz", "xarray", "pandas", "matplotlib", "dask", "zarr", "sklearn",
                "gpytorch")
    code = ("import sys, widenets; print(sorted({m.split('.')[0] for m in sys.modules} & "
            f"set({optional!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
