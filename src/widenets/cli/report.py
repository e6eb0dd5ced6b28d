"""``widenets report``: the main job (for now the kernel demo; issue 8 grows it)."""

from __future__ import annotations

import typer

from widenets.cli import app


@app.command()
def report(quick: bool = typer.Option(False, "--quick", help="One-minute version.")) -> None:
    """Infinite-width kernels of a small CNN on scikit-learn's digits, checked against
    finite networks."""
    from widenets.demo import run_kernel_demo

    run_kernel_demo(n_networks=20 if quick else 60, echo=typer.echo)
