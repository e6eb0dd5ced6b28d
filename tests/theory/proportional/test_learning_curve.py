"""The learning-curve findings and figure, on hand-made rows whose answers are known."""

import pytest

from widenets.errors import HyperparameterError
from widenets.theory.proportional.learning_curve import (
    LearningCurve,
    LearningCurveSettings,
    findings,
)


def _rows():
    rows = []
    # lambda_1 = 1: r < 1, finite better than infinite; lambda_1 = 10: r > 1, worse
    for lam, r, errors, qbars, inf in ((1.0, 0.5, [0.30, 0.32, 0.34], [0.6, 0.8, 0.95], 0.35),
                                      (10.0, 4.0, [0.25, 0.22, 0.21], [3.0, 1.8, 1.1], 0.20)):
        for width, err, q in zip((10, 100, 1000), errors, qbars, strict=True):
            rows.append(dict(kind="theory", n_train=100, readout_prior=lam, width=width,
                             alpha=100 / width, r=r, test_error=err, qbar=q))
        rows.append(dict(kind="infinite", n_train=100, readout_prior=lam, width=None,
                         alpha=None, r=r, test_error=inf, qbar=1.0))
    rows.append(dict(kind="langevin", n_train=100, readout_prior=10.0, width=100, alpha=1.0,
                     r=4.0, test_error=0.23, test_error_se=0.01, qbar=1.9, qbar_se=0.05,
                     converged=True, z_test_error=1.0, z_train_error=0.0, z_qbar=2.0))
    return rows


def test_findings_on_known_rows():
    f = findings(_rows())
    assert f["lambda_lowers_error"] == [dict(n_train=100, holds_at_every_width=True,
                                             fraction_of_widths=1.0)]
    spread = {d["readout_prior"]: d["spread"] for d in f["width_spread"]}
    assert spread == pytest.approx({1.0: 0.04, 10.0: 0.04})
    fvi = {d["readout_prior"]: d for d in f["finite_vs_infinite"]}
    assert fvi[1.0]["finite_beats_infinite"] and fvi[1.0]["as_predicted"]
    assert fvi[10.0]["finite_worse_than_infinite"] and fvi[10.0]["as_predicted"]
    assert all(d["monotone"] for d in f["qbar_to_one"])
    assert f["langevin_z"][0]["z_qbar"] == 2.0
    # break a prediction: the finite net at lambda_1 = 10 now beats the GP at one width
    rows = _rows()
    rows[4]["test_error"] = 0.19
    fvi = {d["readout_prior"]: d for d in findings(rows)["finite_vs_infinite"]}
    assert not fvi[10.0]["as_predicted"]


def test_figure_returns_figure_and_its_data():
    pytest.importorskip("matplotlib")
    from widenets.theory.proportional.figures import learning_curve_figure

    curve = LearningCurve(LearningCurveSettings(), _rows(), findings(_rows()), "toy task", [])
    fig, data = learning_curve_figure(curve)
    axes = fig.get_axes()
    assert len(axes) == 2
    assert axes[0].get_xlabel() == "hidden width $N_1$" and axes[0].get_xscale() == "log"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("Langevin" in s for s in labels) and any("infinite" in s for s in labels)
    assert data["rows"] == curve.rows and data["settings"]["arch"] == "1hl-erf"


def test_settings_are_validated():
    with pytest.raises(HyperparameterError, match="widths"):
        LearningCurveSettings(widths=())
    with pytest.raises(HyperparameterError, match="temperature"):
        LearningCurveSettings(temperature=0.0)
