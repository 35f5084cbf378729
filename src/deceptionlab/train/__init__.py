"""Training: per-member optimisers and the phase-by-phase trainer for batched ensembles."""

from .trainer import HeadData, Phase, Trajectory, train

__all__ = ["HeadData", "Phase", "Trajectory", "train"]
