"""Run these tests single-threaded: the machine is shared and the tensors are small, so
intra-op threads only add contention (restored after each test)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
