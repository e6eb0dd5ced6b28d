"""The report builds from real computation, resumes from its cache, and refuses bad options."""

import json

import pytest

from widenets.errors import WidenetsError
from widenets.report import build_report
from widenets.report.build import SECTIONS
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


def test_every_section_writes_figures_data_and_findings(smoke_report):
    """Tiny sizes (smoke): every section runs its real computation and fills the page."""
    index = smoke_report
    tmp_path = index.parent
    html = index.read_text()
    summary = json.loads((tmp_path / "report.json").read_text())
    assert [s["key"] for s in summary] == list(SECTIONS)
    for section in summary:
        assert section["findings"], section["key"]
        assert section["title"] in html
        for png in section["figures"]:
            assert png in html
            for ext in ("png", "svg", "csv"):
                assert (tmp_path / png).with_suffix(f".{ext}").stat().st_size > 0
    assert "Theory predicts" in html
    assert any("slope" in finding for finding in summary[0]["findings"])


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(WidenetsError, match="sections"):
        build_report(tmp_path, sections=["nope"])
