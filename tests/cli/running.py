"""Run the ``widenets`` entry point in this process and return its exit status."""

from widenets.cli import main


def run(args: list[str]) -> int:
    """Exit status of ``widenets`` with ``args`` (0 on success)."""
    try:
        main(args)
    except SystemExit as exit_info:
        return exit_info.code
    return 0
