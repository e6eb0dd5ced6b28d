"""The ``widenets`` command line (one module per command group, all on one typer app).

Errors caused by the user (:class:`widenets.WidenetsError`) print one line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

from widenets.errors import WidenetsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


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


# Each command lives in its own module and registers itself on `app` when imported.
from widenets.cli import kernel as _kernel  # noqa: E402,F401
from widenets.cli import learning_curve as _learning_curve  # noqa: E402,F401
from widenets.cli import predict as _predict  # noqa: E402,F401
from widenets.cli import report as _report  # noqa: E402,F401
from widenets.cli import sample as _sample  # noqa: E402,F401
from widenets.cli import theory as _theory  # noqa: E402,F401

if __name__ == "__main__":
    main()
