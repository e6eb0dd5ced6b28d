"""``widenets kernel``: plan, dry run, a tiled run on a Dask scheduler, resume, bad input."""

import logging

import numpy as np
import pytest
import torch

import widenets.data
from tests.cli.running import run
from widenets.presets import architecture
from widenets.scale import store as stores

ARGS = ["kernel", "--arch", "cnn-gap-2", "--data", "digits", "--n", "20", "--tile", "8"]


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    yield cluster.scheduler_address
    cluster.close()


def test_dry_run_prints_the_plan_and_creates_nothing(tmp_path, capsys):
    store = tmp_path / "k.zarr"
    assert run([*ARGS, "--store", str(store), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "digits: 20 images (1, 8, 8)" in out
    assert "grid 3 x 3, 6 to compute, 210 input pairs" in out
    assert "FLOP per pair" in out and "per running tile" in out
    assert "dry run: nothing computed" in out
    assert not store.exists()


def test_run_resume_and_result(tmp_path, capsys, scheduler):
    store = tmp_path / "k.zarr"
    assert run([*ARGS, "--store", str(store), "--scheduler", scheduler]) == 0
    out = capsys.readouterr().out
    assert "0 of 6 tiles already finished" in out and "done: 6 tiles computed" in out
    import zarr

    group = zarr.open_group(store, mode="r")
    ds = widenets.data.load("digits", 20, 1)
    ref = architecture("cnn-gap-2").kernel(ds.x_train)
    for kind in ("nngp", "ntk"):
        expected = getattr(ref, kind).numpy()
        # float64 rounding: tiles group the pairs differently from the whole
        np.testing.assert_allclose(group[kind][...], expected, rtol=1e-12,
                                   atol=1e-12 * np.abs(expected).max())
    assert run([*ARGS, "--store", str(store), "--scheduler", scheduler]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 tiles already finished" in out and "done: 0 tiles computed" in out


@pytest.mark.parametrize("extra, message", [
    (["--n", "21"], "holds a different job (inputs, n1, n2"),
    (["--get", "both"], "`get` must be one of"),
    (["--dtype", "float16"], "`--dtype` must be float64 or float32"),
    (["--arch", "resnet-9"], "`architecture` must be a preset"),
    (["--n", "0"], "`--n` must be a positive int"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, message):
    store = tmp_path / "k.zarr"
    if extra == ["--n", "21"]:  # the store holds the job of 20 images
        ds = widenets.data.load("digits", 20, 1)
        job = stores.job_description(architecture("cnn-gap-2"), ds.x_train, None, tile=8,
                                     get=("nngp", "ntk"), dtype=torch.float64)
        stores.open_store(store, job, ds.x_train, None)
    assert run([*ARGS, "--store", str(store), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
