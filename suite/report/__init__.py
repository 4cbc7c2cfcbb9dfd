"""The HTML report: one self-contained page built from stored results (DESIGN.md layer `report`)."""

from suite.report.render import render_report

__all__ = ["render_report"]
