"""Test-session settings shared by every test module."""

import os

import torch


def pytest_configure(config):
    """Under pytest-xdist, give each worker its share of the cores: torch's default (all
    cores per process) makes the workers' thread pools fight for them, and small kernels then
    spend most of their time waiting (10x slower on a busy 2-core machine)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))
