"""The report builds from real computation, resumes from its cache, and refuses bad options."""

import json

import pytest

from widenets.errors import WidenetsError
from widenets.report import build_report
from widenets.report.context import ReportContext


def test_cache_resumes_without_recomputing(tmp_path):
    ctx = ReportContext(out_dir=tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": 3.5}

    assert ctx.cached("step", {"a": 1}, compute) == {"value": 3.5}
    assert ctx.cached("step", {"a": 1}, compute) == {"value": 3.5}
    assert len(calls) == 1
    ctx.cached("step", {"a": 2}, compute)  # other settings, other entry
    assert len(calls) == 2
    assert not list(tmp_path.glob("cache/.*"))  # no temporary files left behind


def test_quick_report_writes_page_figures_and_data(tmp_path):
    index = build_report(tmp_path, smoke=True, sections=["infinite"], log=lambda _: None)
    html = index.read_text()
    assert "Theory predicts" in html and "figures/ntk_convergence.png" in html
    for ext in ("png", "svg", "csv"):
        assert (tmp_path / "figures" / f"ntk_convergence.{ext}").stat().st_size > 0
    summary = json.loads((tmp_path / "report.json").read_text())
    assert any("slope" in finding for finding in summary[0]["findings"])


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(WidenetsError, match="sections"):
        build_report(tmp_path, sections=["nope"])
