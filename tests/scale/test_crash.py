"""Crash safety (acceptance 2): SIGKILL the workers or the client at random moments, rerun,
and get a matrix identical bit for bit to an uninterrupted run, with no finished tile
computed twice (the store counts how many times each tile was finished)."""

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import widenets as wn
import widenets.scale as scale
from widenets.scale import store as stores

# 10 x 10 images through two conv layers and GAP: 78 tiles of 2 x 2 (about 50 ms each)
NET = wn.serial(wn.Conv2d(8, 3, padding="same", bias_std=0.1), wn.Relu(),
                wn.Conv2d(8, 3, padding="same"), wn.Erf(), wn.GlobalAvgPool(), wn.Dense(1))
X = torch.randn(24, 2, 10, 10, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
TILE = 2


@pytest.fixture(scope="module")
def reference(dask_client, tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "k.zarr"
    job = scale.kernel_matrix(NET, X, store=path, tile=TILE, client=dask_client, progress=False)
    return scale.as_numpy(job.result())


def assert_identical(k, reference):
    for kind in ("nngp", "ntk"):
        assert np.array_equal(k[kind], reference[kind]), f"{kind} differs"


def _result_while(job, killer, finished: threading.Event):
    """The job's matrix, computed while ``killer`` runs in a thread; ``finished`` is set when
    the job ends (or fails) so that the killer stops."""
    thread = threading.Thread(target=killer)
    thread.start()
    try:
        return scale.as_numpy(job.result())
    finally:
        finished.set()
        thread.join()


def test_a_worker_killed_after_a_random_number_of_tiles(dask_client, tmp_path):
    """Fast variant of the next test: one SIGKILL of a worker of the shared cluster (its
    nanny restarts it) once a random number of tiles is finished, on a 12-image job (with 8
    images, 10 tiles, an idle machine once finished the job before the killer's poll saw it:
    at most 10 of 21 tiles before the kill leaves the killer a wide margin)."""
    import zarr

    x, total = X[:12], 21  # 6 x 6 tiles of 2 x 2, 21 on or above the diagonal
    reference = scale.as_numpy(scale.kernel_matrix(
        NET, x, store=tmp_path / "ref.zarr", tile=TILE, client=dask_client,
        progress=False).result())
    stop_after = random.Random(3).randint(1, total // 2)
    path, kills, finished = tmp_path / "k.zarr", [], threading.Event()

    def killer():  # polls the store; kills a worker once enough tiles are finished
        while not finished.wait(0.005):
            try:
                done = stores.finished(zarr.open_group(path, mode="r")).sum()
            except (KeyError, FileNotFoundError, ValueError):
                continue  # the store is being created
            if done >= stop_after:
                victim = random.Random(4).choice(sorted(dask_client.run(os.getpid).values()))
                os.kill(victim, signal.SIGKILL)
                kills.append((victim, int(done)))
                return

    job = scale.kernel_matrix(NET, x, store=path, tile=TILE, client=dask_client,
                              progress=False)
    k = _result_while(job, killer, finished)
    assert kills and kills[0][1] < total, "the job finished before a worker could be killed"
    assert_identical(k, reference)
    done = stores.finished(job._group)
    assert all(done[t] == 1 for t in job.plan.tiles())  # none finished twice
    assert sorted(job.computed) == job.plan.tiles()


@pytest.mark.slow
def test_workers_killed_at_random_moments(reference, tmp_path):
    from distributed import Client, LocalCluster

    rng = random.Random(1)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.CRITICAL)
    client = Client(cluster)
    kills, finished = [], threading.Event()

    def killer():  # up to three SIGKILLs of a random worker while the job runs
        while len(kills) < 3 and not finished.wait(rng.uniform(0.2, 1.5)):
            pids = list(client.run(os.getpid).values())  # the workers alive now
            if pids:
                victim = rng.choice(pids)
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)

    try:
        job = scale.kernel_matrix(NET, X, store=tmp_path / "k.zarr", tile=TILE, client=client,
                                  progress=False)
        k = _result_while(job, killer, finished)
    finally:
        client.close()
        cluster.close()
    assert kills, "the job finished before a worker could be killed"
    assert_identical(k, reference)
    done = stores.finished(job._group)
    assert all(done[t] == 1 for t in job.plan.tiles())  # none finished twice
    assert sorted(job.computed) == job.plan.tiles()


CLIENT = """
import json, sys, torch
from widenets.layers.base import Layer
from widenets.scale import kernel_matrix

if __name__ == "__main__":
    net = Layer.from_dict(json.loads(sys.argv[1]))
    x = torch.load(sys.argv[2])
    kernel_matrix(net, x, store=sys.argv[3], tile=int(sys.argv[4]), n_workers=2,
                  progress=False).result()
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_client_and_its_cluster_killed_at_a_random_moment(reference, dask_client, tmp_path,
                                                          seed):
    import zarr

    script, data, path = tmp_path / "client.py", tmp_path / "x.pt", tmp_path / "k.zarr"
    script.write_text(CLIENT)
    torch.save(X, data)
    total = len(scale.kernel_matrix(NET, X, store=tmp_path / "plan.zarr", tile=TILE,
                                    client=dask_client).plan.tiles())
    stop_after = random.Random(seed).randint(1, total // 2)  # finished tiles before the kill
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(NET.to_dict()), str(data),
                             str(path), str(TILE)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if (path / "zarr.json").exists() and proc.poll() is None:
                try:
                    group = zarr.open_group(path, mode="r")
                    if group.attrs.get("widenets", {}).get("state") == "ready" and \
                            stores.finished(group).sum() >= stop_after:
                        break
                except (KeyError, FileNotFoundError, ValueError):
                    pass  # the store is being created
            assert proc.poll() is None, "the client finished before it could be killed"
            time.sleep(0.01)
        else:
            pytest.fail("no tile finished within 300 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client, its scheduler and its workers
        proc.wait()
    before = stores.finished(zarr.open_group(path, mode="r"))
    finished_before = {t for t in zip(*np.nonzero(before), strict=True)}
    assert 1 <= len(finished_before) < total
    assert before.max() == 1
    job = scale.kernel_matrix(NET, X, store=path, tile=TILE, client=dask_client, progress=False)
    k = scale.as_numpy(job.result())
    assert_identical(k, reference)
    assert set(job.skipped) == finished_before
    assert set(job.computed) == set(job.plan.tiles()) - finished_before
    done = stores.finished(job._group)
    assert all(done[t] == 1 for t in job.plan.tiles())  # no finished tile computed again
