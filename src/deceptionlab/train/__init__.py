"""Training: per-member optimisers and the phase-by-phase trainer for batched ensembles."""

from . import train_kernel
from .loop import HeadData, Phase, Stopping, Trajectory
from .trainer import train

__all__ = ["HeadData", "Phase", "Stopping", "Trajectory", "train", "train_kernel"]
