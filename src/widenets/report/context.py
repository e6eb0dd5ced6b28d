"""What a report section works with: settings, a resumable cache, figure and table output."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """A figure written as PNG and SVG, with the data behind it as CSV."""

    name: str
    caption: str
    png: str
    svg: str
    data: str


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[Any]]


@dataclass
class Section:
    """One section of the report: its settings, the theory's prediction, what was measured."""

    key: str
    title: str
    prediction: str
    settings: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ReportContext:
    """Options shared by the sections and the output directory they write into."""

    out_dir: Path
    data: str = "digits"
    quick: bool = False
    data_dir: str | None = None
    seed: int = 0
    progress: bool = True
    log: Callable[[str], None] = print
    smoke: bool = False  # tiny sizes for the test suite (implies quick)

    @property
    def figure_dir(self) -> Path:
        path = self.out_dir / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def cache_dir(self) -> Path:
        path = self.out_dir / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cached(self, key: str, settings: dict[str, Any], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per (key, settings); the JSON result is kept in the cache.

        Results are written atomically, so an interrupted report never reads a partial file
        and resumes from the steps it had finished.
        """
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
        path = self.cache_dir / f"{key}-{digest.hexdigest()[:16]}.json"
        if path.exists():
            if self.progress:
                self.log(f"  {key}: from the cache")
            return json.loads(path.read_text())["result"]
        start = time.perf_counter()
        result = compute()
        write_atomic(path, json.dumps({"settings": settings, "result": result}, default=float))
        if self.progress:
            self.log(f"  {key}: computed in {time.perf_counter() - start:.1f} s")
        return result

    def cached_figure(self, key: str, settings: dict[str, Any], make: Callable[[], Any],
                      caption: str) -> tuple[Figure, dict]:
        """Draw ``make() -> (matplotlib figure, data)`` once per settings and keep it.

        ``data`` has ``columns`` and ``rows`` (written as the figure's CSV) and anything else
        JSON-serialisable; on a resumed run the saved figure and data are reused.
        """
        def compute():
            fig, data = make()
            figure = self.save_figure(fig, key, caption, data["columns"], data["rows"])
            return {"figure": dataclasses.asdict(figure), "data": data}

        result = self.cached(f"figure-{key}", settings, compute)
        figure = Figure(**result["figure"])
        if not (self.out_dir / figure.png).exists():  # cache without its files: redraw
            (self.cache_dir / "missing").touch()
            result = compute()
            figure = Figure(**result["figure"])
        return figure, result["data"]

    def save_figure(self, fig, name: str, caption: str, columns: Sequence[str],
                    rows: Sequence[Sequence[Any]]) -> Figure:
        """Write ``fig`` (matplotlib) as PNG and SVG and its data as CSV."""
        import matplotlib.pyplot as plt

        png, svg, data = (self.figure_dir / f"{name}.{ext}" for ext in ("png", "svg", "csv"))
        fig.savefig(png, dpi=110, bbox_inches="tight")
        fig.savefig(svg, bbox_inches="tight")
        plt.close(fig)
        with open(data, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(rows)
        rel = lambda p: str(p.relative_to(self.out_dir))  # noqa: E731
        return Figure(name, caption, rel(png), rel(svg), rel(data))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
