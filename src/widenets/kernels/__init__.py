"""The kernel state carried through a network and the numerics shared by layers."""

from widenets.kernels.state import Kernel, KernelState

__all__ = ["Kernel", "KernelState"]
