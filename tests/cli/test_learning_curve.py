"""``widenets learning-curve``: figure, data and settings written; errors exit with 2."""

import csv
import json

import pytest

from tests.cli.running import run
from widenets.errors import DataNotFoundError

TINY = ["learning-curve", "--data", "mnist", "--arch", "1hl-erf", "--widths", "20,40",
        "--n-train", "30", "--n-test", "40", "--priors", "1,10", "--pool", "4",
        "--temperature", "0.05", "--langevin-widths", "20", "--langevin-priors", "1",
        "--langevin-steps", "80", "--langevin-chains", "2", "--threads", "1"]


def _data_available():
    from widenets.data import find_data_dir

    try:
        find_data_dir(None)
    except DataNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _data_available(), reason="bundled MNIST not found")
def test_writes_figure_data_and_settings(tmp_path, capsys):
    out = tmp_path / "lc"
    assert run([*TINY, "--out", str(out)]) == 0
    for name in ("learning_curve.png", "learning_curve.svg", "learning_curve.csv",
                 "learning_curve.json", "settings.json"):
        assert (out / name).stat().st_size > 0, name
    settings = json.loads((out / "settings.json").read_text())
    assert settings["widths"] == [20, 40] and settings["temperature"] == 0.05
    with open(out / "learning_curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    kinds = {row["kind"] for row in rows}
    assert kinds == {"theory", "infinite", "qbar_sweep", "langevin"}
    assert {float(r["readout_prior"]) for r in rows} == {1.0, 10.0}
    data = json.loads((out / "learning_curve.json").read_text())
    assert set(data["findings"]) >= {"lambda_lowers_error", "width_spread",
                                     "finite_vs_infinite", "qbar_to_one", "langevin_z"}
    lang = [r for r in data["rows"] if r["kind"] == "langevin"]
    assert len(lang) == 1 and lang[0]["test_error_se"] > 0
    # MNIST 0/1 has effective dimension ~5 < P/2: the theory's warning is written out
    assert any("effective dimension" in w for w in data["warnings"])
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--widths", "20,x"], "`--widths` must be comma-separated integers"),
    (["--priors", "1,-2"], "`readout_priors` must be positive numbers"),
    (["--arch", "fc1-erf"], "bias_std"),
])
def test_bad_settings_exit_with_status_two(tmp_path, capsys, args, message):
    assert run([*TINY, *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
