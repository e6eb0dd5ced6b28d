"""Render the report as one static HTML page (no server, no external resources)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from widenets.report.context import Section

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.prediction { background: #f3f6fb; border-left: 4px solid #4a7bd0; padding: 0.5em 1em; }
.settings { font-size: 0.9em; color: #444; }
.settings code { background: #f4f4f4; padding: 0 0.2em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.92em; color: #333; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
ul.findings li { margin: 0.25em 0; }
nav a { margin-right: 1em; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _section(section: Section) -> str:
    parts = [f'<section id="{_e(section.key)}"><h2>{_e(section.title)}</h2>',
             f'<p class="prediction"><b>Theory predicts.</b> {_e(section.prediction)}</p>']
    settings = ", ".join(f"{_e(k)} = <code>{_e(v)}</code>" for k, v in section.settings.items())
    parts.append(f'<p class="settings"><b>Settings.</b> {settings}; computed in '
                 f"{section.seconds:.1f} s.</p>")
    if section.findings:
        items = "".join(f"<li>{_e(f)}</li>" for f in section.findings)
        parts.append(f'<p><b>Measured.</b></p><ul class="findings">{items}</ul>')
    if section.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in section.warnings)
        parts.append(f'<p><b>Caveats raised while computing.</b></p><ul class="notes">{items}'
                     "</ul>")
    for fig in section.figures:
        parts.append(f'<figure><img src="{_e(fig.png)}" alt="{_e(fig.caption)}">'
                     f"<figcaption>{_e(fig.caption)} "
                     f'(<a href="{_e(fig.svg)}">SVG</a>, <a href="{_e(fig.data)}">data</a>)'
                     "</figcaption></figure>")
    for table in section.tables:
        head = "".join(f"<th>{_e(h)}</th>" for h in table.header)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
                       for row in table.rows)
        parts.append(f"<table><caption>{_e(table.caption)}</caption><thead><tr>{head}</tr>"
                     f"</thead><tbody>{body}</tbody></table>")
    parts.append("</section>")
    return "\n".join(parts)


def render(sections: list[Section], *, title: str, subtitle: str) -> str:
    """The whole page."""
    nav = "".join(f'<a href="#{_e(s.key)}">{_e(s.title)}</a>' for s in sections)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(_section(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1><p>{_e(subtitle)} Generated {stamp}.</p>"
            f"<nav>{nav}</nav>{body}</body></html>\n")
