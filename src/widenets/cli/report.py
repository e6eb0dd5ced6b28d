"""``widenets report``: the main job, an HTML page of theory vs measured networks."""

from __future__ import annotations

from pathlib import Path

import typer

from widenets.cli import app


@app.command()
def report(
    out: Path = typer.Option(Path("widenets-report"), "--out", help="Output directory."),
    data: str = typer.Option("digits", "--data", help="digits, mnist, fashion-mnist, cifar10."),
    data_dir: str = typer.Option(None, "--data-dir", help="Where the bundled data sets are."),
    sections: str = typer.Option(None, "--sections", help="Comma-separated subset."),
    quick: bool = typer.Option(False, "--quick", help="One-minute version."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write the report (index.html, figures as PNG/SVG, data as CSV); resumes from cache."""
    from widenets.report import build_report

    chosen = None if sections is None else [s.strip() for s in sections.split(",") if s.strip()]
    index = build_report(out, data=data, quick=quick, sections=chosen, data_dir=data_dir,
                         seed=seed, log=typer.echo)
    typer.echo(f"report written to {index.resolve()}")
