"""The entry point: a malformed command line is one line on stderr and exit status 2."""

import pytest

from widenets.cli import main


@pytest.mark.parametrize("argv, message", [
    (["predict", "--n-train", "abc"], "Invalid value for '--n-train'"),
    (["nope"], "No such command 'nope'"),
    (["predict"], "Missing option '--arch'"),
    (["criticality", "--no-such-flag"], "No such option"),
])
def test_usage_errors_are_one_line_with_exit_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "Usage: widenets" in capsys.readouterr().out
