"""Model families trained as batched ensembles (model axis first)."""

from .ensemble import MLPEnsemble, random_ensemble
from .ponder import PonderEnsemble
from .transformer import TransformerEnsemble

__all__ = ["MLPEnsemble", "PonderEnsemble", "TransformerEnsemble", "random_ensemble"]
