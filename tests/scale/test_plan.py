"""Tiling plans and the cost model, checked by counting by hand."""

import math

import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError, MemoryPlanError
from widenets.scale.plan import flops_per_pair, plan_tiles

GAP = wn.serial(wn.Conv2d(8, 3, padding="same"), wn.Relu(), wn.Conv2d(8, 3, padding="same"),
                wn.Relu(), wn.GlobalAvgPool(), wn.Dense(1))


@pytest.mark.parametrize("n1, n2, tile", [(10, None, 3), (10, 7, 3), (5, None, 8), (9, 9, 3)])
def test_tiles_cover_every_pair_once(n1, n2, tile):
    plan = plan_tiles(GAP, (1, 4, 4), n1, n2, tile=tile, get=("nngp",),
                      dtype=torch.float64, memory=2**30)
    covered = torch.zeros(n1, n1 if n2 is None else n2, dtype=torch.int64)
    for i, j in plan.tiles():
        rows = slice(i * plan.tile, (i + 1) * plan.tile)
        cols = slice(j * plan.tile, (j + 1) * plan.tile)
        covered[rows, cols] += 1
        if n2 is None and i != j:
            covered[cols, rows] += 1
    assert (covered == 1).all()
    expected = n1 * (n1 + 1) // 2 if n2 is None else n1 * n2
    assert plan.total_pairs == expected
    assert len(plan.tiles()) == (math.comb(plan.grid[0] + 1, 2) if n2 is None
                                 else plan.grid[0] * plan.grid[1])


def test_cost_model_counts_cntk_flops():
    # cntk.md §1.4 per conv layer and entry: 2 x 9 taps + 4 affine; ReLU 40; entries P^2
    p2 = 16**2
    per_layer = (2 * 9 + 4 + 40) * p2
    expected = 2 * 1 * p2 + 2 * per_layer + 2 * p2 + 4  # input kernel, layers, GAP, Dense
    assert flops_per_pair(GAP, (1, 4, 4)) == expected
    # a Flatten readout needs only the P same-position entries
    flat = wn.serial(wn.Conv2d(8, 3, padding="same"), wn.Relu(), wn.Flatten(), wn.Dense(1))
    assert flops_per_pair(flat, (1, 4, 4)) == 2 * 16 + (2 * 9 + 4 + 40) * 16 + 2 * 16 + 4


def test_memory_budget_bounds_the_engine_blocks_and_is_checked():
    # a vanilla CNN keeps 784 same-position entries per pair: 37 KB of engine memory each
    cnn = wn.serial(wn.Conv2d(16, 3, padding="same"), wn.Relu(), wn.Flatten(), wn.Dense(1))
    small = plan_tiles(cnn, (1, 28, 28), 4000, None, tile=512, get=("nngp", "ntk"),
                       dtype=torch.float64, memory=64 * 2**20)
    large = plan_tiles(cnn, (1, 28, 28), 4000, None, tile=512, get=("nngp", "ntk"),
                       dtype=torch.float64, memory=2**30)
    assert small.block < large.block <= 512
    assert small.bytes_per_tile <= 64 * 2**20 < large.bytes_per_tile
    with pytest.raises(MemoryPlanError, match="one tile of 512 x 512 needs .* budget"):
        plan_tiles(cnn, (1, 28, 28), 4000, None, tile=512, get=("nngp",),
                   dtype=torch.float64, memory=2**20)
    mlp = wn.serial(wn.Dense(16), wn.Relu(), wn.Dense(1))
    with pytest.raises(HyperparameterError, match="`tile` must be a positive int"):
        plan_tiles(mlp, (784,), 10, None, tile=0, get=("nngp",), dtype=torch.float64,
                   memory=2**30)


def test_describe_names_tiles_memory_and_cost():
    plan = plan_tiles(GAP, (1, 4, 4), 100, None, tile=32, get=("nngp", "ntk"),
                      dtype=torch.float32, memory=2**30)
    text = plan.describe(rate=1e9)
    assert "grid 4 x 4, 10 to compute" in text
    assert "5,050 input pairs" in text
    assert "worker-hours" in text and "FLOP" in text and "MiB" in text
