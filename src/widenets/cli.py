"""The ``widenets`` command line.

Errors caused by the user (:class:`widenets.WidenetsError`) print one line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

from widenets.errors import WidenetsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@app.command()
def report(quick: bool = typer.Option(False, "--quick", help="One-minute version.")) -> None:
    """Infinite-width kernels of a small CNN on scikit-learn's digits, checked against
    finite networks."""
    from widenets.demo import run_kernel_demo

    run_kernel_demo(n_networks=20 if quick else 60, echo=typer.echo)


@app.callback()
def _group() -> None:
    """The theory of wide neural networks, computed and checked against finite networks."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: a WidenetsError becomes a one-line message and exit status 2."""
    try:
        app(args=argv, prog_name="widenets")
    except WidenetsError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
