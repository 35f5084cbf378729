"""Reports: figures (PNG and SVG) and, later, the claims report."""

from . import figures

__all__ = ["figures"]
