"""Assemble the report: run the sections (resumably), write figures, data and index.html."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from widenets.errors import HyperparameterError, WidenetsWarning, expected
from widenets.report.context import ReportContext, Section, write_atomic
from widenets.report.page import render


def _sections() -> dict[str, Callable[[ReportContext], Section]]:
    from widenets.report.sections import (
        convolutional,
        criticality,
        infinite,
        performance,
        proportional,
    )

    return {"infinite": infinite.build, "criticality": criticality.build,
            "proportional": proportional.build, "convolutional": convolutional.build,
            "performance": performance.build}


SECTIONS = ("infinite", "criticality", "proportional", "convolutional", "performance")


def build_report(out_dir: str | Path = "widenets-report", *, data: str = "digits",
                 quick: bool = False, sections: Sequence[str] | None = None,
                 data_dir: str | None = None, seed: int = 0, progress: bool = True,
                 log: Callable[[str], None] = print, smoke: bool = False) -> Path:
    """Compute every section and write ``out_dir/index.html``; returns its path.

    Parameters
    ----------
    out_dir : path
        Where the page, ``figures/`` (PNG, SVG, CSV) and ``cache/`` (resumable results) go.
    data : str
        Data set for the data-driven sections ("digits" is embedded; "mnist",
        "fashion-mnist", "cifar10" are read from the data directory).
    quick : bool
        A one-minute version (fewer widths, networks and samples).
    sections : sequence of str, optional
        A subset of :data:`SECTIONS`.
    smoke : bool
        Tiny sizes, for the test suite: the numbers are real but too noisy to read.
    """
    available = _sections()
    chosen = list(SECTIONS if sections is None else sections)
    for name in chosen:
        if name not in available:
            raise HyperparameterError(expected("sections", f"names from {sorted(available)}",
                                               name))
    # a bad data set, data directory or seed fails now, not after the first sections; the
    # files read here stay cached for the sections that use them
    from widenets.data import load

    load(data, 1, 1, data_dir=data_dir, seed=seed, preprocessing="none")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HyperparameterError(expected("out_dir", "a directory that can be created",
                                           f"{out} ({err.strerror or err})")) from err
    ctx = ReportContext(out_dir=out, data=data, quick=quick or smoke, data_dir=data_dir,
                        seed=seed, progress=progress, log=log, smoke=smoke)
    done = []
    for number, name in enumerate(chosen, 1):
        log(f"[report] section {number}/{len(chosen)}: {name} ...")
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", WidenetsWarning)
            section = available[name](ctx)
        section.seconds = time.perf_counter() - start
        section.warnings = sorted({str(w.message) for w in caught
                                   if issubclass(w.category, WidenetsWarning)})
        for message in section.warnings:  # expected at the small widths of a quick report
            log(f"[report] {name}: note: {message}")
        for w in caught:  # anything else is passed on
            if not issubclass(w.category, WidenetsWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        done.append(section)
    page = render(done, title="widenets report",
                  subtitle=f"Data: {data}{' (quick)' if quick else ''}.")
    index = out / "index.html"
    write_atomic(index, page)
    summary = [{"key": s.key, "title": s.title, "settings": s.settings,
                "findings": s.findings, "warnings": s.warnings, "seconds": s.seconds,
                "figures": [f.png for f in s.figures]} for s in done]
    write_atomic(out / "report.json", json.dumps(summary, indent=2, default=str))
    return index
