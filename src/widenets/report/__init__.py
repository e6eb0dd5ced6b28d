"""The HTML report: theory and measured finite networks side by side (``widenets report``).

Each section computes its numbers through a cache in the output directory (an interrupted
report resumes from what it had finished), draws its figures (PNG and SVG, with the data
behind each as CSV), and states its settings and what the theory predicts.
"""

from widenets.report.build import SECTIONS, build_report

__all__ = ["SECTIONS", "build_report"]
