"""The repriorisation map is exact (other_topics.md §B, reference results 1 and 3)."""

import math

import pytest
import torch

import widenets as wn
from widenets.finite.posterior import Posterior
from widenets.finite.reprioritization import ReadoutMap, ReprioritizedPosterior


def _posterior(width, n_train=20, n_chains=3, outputs=2):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train, 5, generator=g, dtype=torch.float64)
    y = torch.randn(n_train, outputs, generator=g, dtype=torch.float64)
    net = wn.serial(wn.Dense(width, weight_std=1.3, bias_std=0.2), wn.Tanh(),
                    wn.Dense(outputs, weight_std=0.9, bias_std=0.4))
    model = net.module(seed=1, in_shape=(5,))
    base = Posterior(model, x, y, temperature=0.1, priors=[None, (2.0, 3.0)])
    return base, ReprioritizedPosterior(base), n_chains


@pytest.mark.parametrize("width", [8, 50])  # primal (d + 1 <= n) and dual (d + 1 > n) forms
def test_readout_marginal_is_standard_normal(width):
    """For fixed lower layers, U(z_low, u) - |u|^2/2 does not depend on u."""
    base, rep, n_chains = _posterior(width)
    g = torch.Generator().manual_seed(2)
    z_low = torch.randn(1, rep.low_size, generator=g, dtype=torch.float64).expand(n_chains, -1)
    u = 3 * torch.randn(n_chains, rep.dim - rep.low_size, generator=g, dtype=torch.float64)
    energy, _ = rep.energy(torch.cat([z_low, u], 1))
    rest = energy - 0.5 * (u**2).sum(1)
    # float64 round-off of O(1e3) energies
    torch.testing.assert_close(rest, rest[:1].expand(n_chains), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("width", [8, 50])
def test_map_is_a_square_root_of_the_conditional_covariance(width):
    base, rep, n_chains = _posterior(width)
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(n_chains, 20, width + 1, generator=g, dtype=torch.float64)
    y = torch.randn(20, 2, generator=g, dtype=torch.float64)
    rmap = ReadoutMap(emb, y, temperature=0.1)
    assert rmap.primal == (width + 1 <= 20)
    eye = torch.eye(width + 1, dtype=torch.float64).expand(n_chains, -1, -1)
    s = rmap.apply(eye)
    precision = eye + emb.transpose(1, 2) @ emb / 0.1
    torch.testing.assert_close(s @ s.transpose(1, 2), torch.linalg.inv(precision),
                               rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(rmap.apply_transpose(eye), s.transpose(1, 2))
    mean = torch.linalg.solve(precision, emb.transpose(1, 2) @ y / 0.1)
    torch.testing.assert_close(rmap.mean, mean, rtol=1e-9, atol=1e-12)
    # log det S^-1 = log det(precision) / 2
    torch.testing.assert_close(rmap.log_det_inverse(), torch.logdet(precision) / 2)
    omega = torch.randn(n_chains, width + 1, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(rmap.apply(rmap.inverse(omega)) + rmap.mean, omega)


@pytest.mark.parametrize("width", [8, 50])
def test_same_density_up_to_the_jacobian(width):
    """U_phi(phi) = U(theta(phi)) + k log det S^-1, and the coordinates round-trip."""
    base, rep, n_chains = _posterior(width)
    g = torch.Generator().manual_seed(4)
    phi = torch.randn(n_chains, rep.dim, generator=g, dtype=torch.float64)
    params = rep.parameters(phi)
    torch.testing.assert_close(rep.initial(params), phi)
    energy, f = rep.energy(phi)
    base_energy, base_f = base.energy(base.whiten(params))
    torch.testing.assert_close(f, base_f)
    z_low = phi[:, :rep.low_size]
    emb = rep._embedding(rep._low_params(z_low), base.x_train, n_chains)
    log_det = ReadoutMap(emb, base.y_train, 0.1).log_det_inverse()
    torch.testing.assert_close(energy, base_energy + 2 * log_det)
    assert math.isfinite(energy.sum().item())
