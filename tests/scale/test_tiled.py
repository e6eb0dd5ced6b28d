"""Tiled equals whole: the Dask/Zarr job against the direct kernel (acceptance 1)."""

import tempfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import widenets as wn
import widenets.scale as scale
from tests.strategies import architectures, inputs
from widenets.errors import ShapeError, WidenetsError


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(architectures, st.integers(1, 9), st.one_of(st.none(), st.integers(1, 6)),
       st.integers(1, 5), st.sampled_from([("nngp", "ntk"), ("ntk",)]), st.integers(0, 10**6))
def test_tiled_matrix_equals_direct_kernel(dask_client, arch, n1, n2, tile, get, seed):
    net, shape = arch
    x1 = inputs(shape, n1, seed)
    x2 = None if n2 is None else inputs(shape, n2, seed + 1)
    direct = net.kernel(x1, x2, get=get)
    with tempfile.TemporaryDirectory() as tmp:
        job = scale.kernel_matrix(net, x1, x2, store=f"{tmp}/k.zarr", tile=tile, get=get,
                                  client=dask_client, progress=False)
        result = job.result()
        k = scale.as_numpy(result)
    assert len(job.computed) == len(job.plan.tiles())
    for kind in get:
        ref = getattr(direct, kind).numpy()
        # float64 rounding: a tile computes its pairs in other groupings than the whole
        np.testing.assert_allclose(k[kind], ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    assert all(getattr(result, kind) is None for kind in ("nngp", "ntk") if kind not in get)


def test_rerun_resumes_and_scheduler_address_works(dask_client, tmp_path):
    net = wn.serial(wn.Conv2d(4, 3, padding="same"), wn.Relu(), wn.GlobalAvgPool(), wn.Dense(1))
    x = inputs((1, 5, 5), 7, 0)
    address = dask_client.scheduler.address
    job = scale.kernel_matrix(net, x, store=tmp_path / "k.zarr", tile=3, client=address,
                              progress=False)
    first = scale.as_numpy(job.result())
    assert sorted(job.computed) == job.plan.tiles() and job.skipped == []
    again = scale.kernel_matrix(net, x, store=tmp_path / "k.zarr", tile=3, client=dask_client,
                                progress=False)
    second = scale.as_numpy(again.result())
    assert again.computed == [] and sorted(again.skipped) == again.plan.tiles()
    assert again.status() == (6, 6)
    for kind in ("nngp", "ntk"):
        np.testing.assert_array_equal(first[kind], second[kind])


def test_float32_tiles_are_stored_in_float64(dask_client, tmp_path):
    net = wn.serial(wn.Dense(8), wn.Relu(), wn.Dense(1))
    x = inputs((5,), 9, 2)
    job = scale.kernel_matrix(net, x, store=tmp_path / "k.zarr", tile=4, dtype=torch.float32,
                              client=dask_client, progress=False)
    k = job.result()
    assert k.ntk.dtype == np.float64
    ref = net.kernel(x).ntk.numpy()
    # float32 rounding through two layers
    assert np.abs(k.ntk[...] - ref).max() / np.abs(ref).max() < 1e-5


def test_errors_are_raised_before_anything_runs(tmp_path):
    net = wn.serial(wn.Conv2d(4, 3), wn.Relu(), wn.Dense(1))  # output keeps spatial axes
    with pytest.raises(ShapeError, match="`network output` must be flat features"):
        scale.kernel_matrix(net, torch.randn(4, 1, 5, 5), store=tmp_path / "a.zarr")
    mlp = wn.serial(wn.Dense(4), wn.Relu(), wn.Dense(1))
    with pytest.raises(ShapeError, match="`x2` must have shape"):
        scale.kernel_matrix(mlp, torch.randn(4, 3), torch.randn(4, 2), store=tmp_path / "b")
    with pytest.raises(WidenetsError, match="`get` must be one of"):
        scale.kernel_matrix(mlp, torch.randn(4, 3), get="both", store=tmp_path / "c")
    with pytest.raises(WidenetsError, match="`tile` must be a positive int"):
        scale.kernel_matrix(mlp, torch.randn(4, 3), tile=-1, store=tmp_path / "d")
    assert not any((tmp_path / name).exists() for name in "abcd")
