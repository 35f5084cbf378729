"""Reports: figures (PNG and SVG), the paths analysis, the claims table and the HTML report."""

from . import figures

__all__ = ["figures"]
