"""The report figures: they draw, label their axes and return CSV-ready data."""

import pytest

pytest.importorskip("matplotlib")

from widenets.theory.effective import figures


def _labelled(fig):
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() and ax.get_ylabel() is not None


def test_vertex_figure(tmp_path):
    fig, data = figures.vertex_vs_aspect_ratio(activations=("relu", "tanh"), widths=(16, 64),
                                               depths=(2, 4), n_networks=300)
    _labelled(fig)
    assert data["columns"][:4] == ["activation", "width", "depth", "aspect_ratio"]
    assert len(data["rows"]) == 2 * 2 * 2
    relu = [r for r in data["rows"] if r[0] == "relu" and r[2] == 4]
    assert relu[0][-1] == pytest.approx(5 * 3 / 16)  # theory V/(n K^2) = nu (L-1)/n
    fig.savefig(tmp_path / "v.png")


def test_ntk_variance_figure(tmp_path):
    fig, data = figures.ntk_variance_vs_width(activations=("tanh",), depth=3, widths=(16, 32),
                                              n_networks=40)
    _labelled(fig)
    assert [r[1] for r in data["rows"]] == [16, 32]
    assert all(r[4] > 0 for r in data["rows"])  # standard errors
    fig.savefig(tmp_path / "n.png")


def test_phase_diagram_figure(tmp_path):
    fig, data = figures.phase_diagram_figure("gelu", grid=7)
    _labelled(fig)
    assert len(data["rows"]) == 49
    kinds = [p[0] for p in data["critical_points"]]
    assert kinds == ["half-stable", "K*=0"]
    fig.savefig(tmp_path / "p.svg")
