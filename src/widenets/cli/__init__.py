"""The ``widenets`` command line (one module per command group, all on one typer app).

Errors caused by the user (:class:`widenets.WidenetsError`) print one line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.17 vendors click; older typers use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from widenets.errors import WidenetsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _group() -> None:
    """The theory of wide neural networks, computed and checked against finite networks."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: a WidenetsError or a malformed command line becomes a one-line message and
    exit status 2; Ctrl-C exits with 130."""
    try:
        code = app(args=argv, prog_name="widenets", standalone_mode=False)
    except WidenetsError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except click_exceptions.NoArgsIsHelpError as err:  # bare `widenets`: show the help
        typer.echo(err.ctx.get_help() if err.ctx else str(err))
        sys.exit(0)
    except click_exceptions.UsageError as err:  # unknown option, bad value, missing option
        command = err.ctx.command_path if err.ctx else "widenets"
        typer.echo(f"error: {err.format_message()} (see `{command} --help`)", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


# Each command lives in its own module and registers itself on `app` when imported.
from widenets.cli import kernel as _kernel  # noqa: E402,F401
from widenets.cli import learning_curve as _learning_curve  # noqa: E402,F401
from widenets.cli import predict as _predict  # noqa: E402,F401
from widenets.cli import report as _report  # noqa: E402,F401
from widenets.cli import sample as _sample  # noqa: E402,F401
from widenets.cli import theory as _theory  # noqa: E402,F401

if __name__ == "__main__":
    main()
