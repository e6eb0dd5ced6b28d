"""``widenets criticality`` and ``widenets phase-diagram``."""

import csv

import pytest
import torch

from widenets.cli import main


@pytest.fixture(autouse=True)
def _restore_threads():
    """The commands run single-threaded (small tensors); restore the setting afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_criticality_prints_class_initialisation_scaling_and_depths(capsys):
    code, out, _ = _run(capsys, "criticality", "--activation", "gelu", "--depth", "8")
    assert code in (0, None)
    assert "half-stable" in out
    assert "C_b = 0.172922390756" in out and "C_W = 1.98305825744" in out
    assert "K* = 3.56155281281" in out
    assert "V/K^2" in out and "l =    8" in out
    assert "correlation depths" in out and "ordered" in out


@pytest.mark.parametrize("name, needle", [("tanh", "K*=0"), ("relu", "scale-invariant"),
                                          ("leaky-relu", "C_W = 1.9998")])
def test_criticality_of_other_classes(capsys, name, needle):
    code, out, _ = _run(capsys, "criticality", "-a", name, "--depth", "4")
    assert code in (0, None) and needle in out


def test_no_criticality_is_an_answer_not_an_error(capsys):
    code, out, _ = _run(capsys, "criticality", "--activation", "sigmoid")
    assert code in (0, None)
    assert out.startswith("no criticality:")


def test_unknown_activation_is_one_line_and_exit_2(capsys):
    code, out, err = _run(capsys, "criticality", "--activation", "swishy")
    assert code == 2
    assert err.count("\n") == 1 and "`activation` must be one of" in err and "'swishy'" in err


def test_phase_diagram_writes_figure_and_data(capsys, tmp_path):
    out_file = tmp_path / "pd" / "tanh.png"
    code, out, _ = _run(capsys, "phase-diagram", "--activation", "tanh", "--out", str(out_file),
                        "--grid", "9")
    assert code in (0, None)
    assert out_file.stat().st_size > 10_000
    with open(out_file.with_suffix(".csv")) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["bias_var", "weight_var", "fixed_point", "chi_parallel",
                       "chi_perpendicular"]
    assert len(rows) == 1 + 9 * 9
    assert "critical point (K*=0): C_b = 0, C_W = 1" in out


def test_phase_diagram_bad_grid(capsys, tmp_path):
    code, _, err = _run(capsys, "phase-diagram", "-a", "tanh", "--out",
                        str(tmp_path / "x.png"), "--grid", "1")
    assert code == 2 and "--grid" in err
