"""Detection benchmark (docs/detection.md): labelled sets of runs that behave the same on the training
distribution, detectors behind one interface, and their scores (AUROC with intervals, TPR at 1% FPR)."""

from .base import BUILTIN, Detector, DetectorError, Inputs, detector, register
from .registry import get_detector

__all__ = ["BUILTIN", "Detector", "DetectorError", "Inputs", "detector", "get_detector", "register"]
