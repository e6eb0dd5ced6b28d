"""The Zarr store: what a job is, refusing other jobs, the explicit record of finished tiles."""

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.errors import WidenetsError
from widenets.scale import store as stores

NET = wn.serial(wn.Dense(8), wn.Relu(), wn.Dense(1))


def job(x1, x2=None, net=NET, tile=4, get=("nngp", "ntk"), dtype=torch.float64):
    return stores.job_description(net, x1, x2, tile=tile, get=get, dtype=dtype)


@pytest.fixture
def x():
    return torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_new_store_records_the_job_and_its_inputs(tmp_path, x):
    group = stores.open_store(tmp_path / "k.zarr", job(x), x, None)
    meta = group.attrs["widenets"]
    assert meta["state"] == "ready" and meta["architecture"] == NET.to_dict()
    assert meta["fingerprint"] == stores.fingerprint(x, None)
    np.testing.assert_array_equal(group["x1"][...], x.numpy())
    assert "x2" not in group
    assert group["nngp"].chunks == (4, 4) and group["done"].shape == (3, 3)
    assert (stores.finished(group) == 0).all()


@pytest.mark.parametrize("change, name", [
    (dict(net=wn.serial(wn.Dense(8), wn.Erf(), wn.Dense(1))), "architecture"),
    (dict(tile=5), "tile"),
    (dict(get=("nngp",)), "get"),
    (dict(dtype=torch.float32), "dtype"),
])
def test_a_different_job_is_refused(tmp_path, x, change, name):
    stores.open_store(tmp_path / "k.zarr", job(x), x, None)
    other = job(x.float() if "dtype" in change else x, **change)
    with pytest.raises(WidenetsError, match=rf"holds a different job \((inputs, )?{name} differ"):
        stores.open_store(tmp_path / "k.zarr", other, x, None)


def test_different_inputs_are_refused_even_one_value(tmp_path, x):
    stores.open_store(tmp_path / "k.zarr", job(x), x, None)
    y = x.clone()
    y[3, 1] += 1e-12
    with pytest.raises(WidenetsError, match=r"\(inputs differ\)"):
        stores.open_store(tmp_path / "k.zarr", job(y), y, None)
    with pytest.raises(WidenetsError, match=r"n2, symmetric differ|inputs, n2"):
        stores.open_store(tmp_path / "k.zarr", job(x, x[:4]), x, x[:4])


def test_other_zarr_groups_and_files_are_not_overwritten(tmp_path, x):
    import zarr

    other = zarr.open_group(tmp_path / "other.zarr", mode="w")
    other.create_array("a", shape=(2,), dtype="float64")
    with pytest.raises(WidenetsError, match="not a widenets kernel store"):
        stores.open_store(tmp_path / "other.zarr", job(x), x, None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(WidenetsError, match="must be a directory"):
        stores.open_store(tmp_path / "file", job(x), x, None)


def test_finished_tiles_are_recorded_explicitly_not_inferred_from_chunks(tmp_path, x):
    group = stores.open_store(tmp_path / "k.zarr", job(x), x, None)
    # a chunk written by a worker that died before finishing the tile does not count
    group["nngp"][0:4, 4:8] = np.ones((4, 4))
    assert stores.finished(group, 0, 1) == 0
    stores.write_tile(group, 0, 1, {"nngp": np.full((4, 4), 2.0), "ntk": np.zeros((4, 4))},
                      symmetric=True)
    assert stores.finished(group, 0, 1) == 1
    np.testing.assert_array_equal(group["nngp"][4:8, 0:4], np.full((4, 4), 2.0))  # mirrored
    # the edge tile is smaller than the chunk
    stores.write_tile(group, 2, 2, {"nngp": np.eye(2), "ntk": np.eye(2)}, symmetric=True)
    assert stores.finished(group).sum() == 2


def test_a_store_interrupted_while_created_is_created_again(tmp_path, x):
    group = stores.open_store(tmp_path / "k.zarr", job(x), x, None)
    group.attrs["widenets"] = {**group.attrs["widenets"], "state": "creating"}
    group["x1"][0] = 0.0  # half-written inputs
    group = stores.open_store(tmp_path / "k.zarr", job(x), x, None)
    assert group.attrs["widenets"]["state"] == "ready"
    np.testing.assert_array_equal(group["x1"][...], x.numpy())
