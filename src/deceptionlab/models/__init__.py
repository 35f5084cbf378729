"""Model families trained as batched ensembles (model axis first)."""

from .ensemble import MLPEnsemble

__all__ = ["MLPEnsemble"]
