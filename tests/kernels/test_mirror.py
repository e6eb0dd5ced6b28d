"""The blocked mirror of flat-input kernels against its definition."""

import pytest
import torch

from widenets.kernels.compute import _mirror


@pytest.mark.parametrize("n", [1, 5, 128, 129, 300])
def test_blocked_mirror_is_the_upper_triangle_and_its_transpose(n):
    t = torch.randn(n, n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    expected = torch.triu(t) + torch.triu(t, 1).T  # exact: every entry is a copy (or + 0)
    out = _mirror(t, block=64)
    assert torch.equal(out, expected) and torch.equal(out, out.T)
    assert n == 1 or not torch.equal(t, t.T)  # the input is left as it was
