"""The claims of the two texts (C1 to C11), each judged on an `Evidence` object by a rule stated beside its
verdict. This layer judges; `report` renders what it returns. docs/architecture.md says where a new claim
goes."""

from .gap import claim_c1, claim_c3, claim_c6, claim_c9, claim_c10, has_gap
from .judging import CLAIMS, COMBINE, Claim, Evidence
from .table import claim_c2, claim_c4, claim_c5, claim_c7, claim_c8, claim_c11, claims_table

__all__ = ["CLAIMS", "COMBINE", "Claim", "Evidence", "claims_table", "has_gap",
           "claim_c1", "claim_c2", "claim_c3", "claim_c4", "claim_c5", "claim_c6", "claim_c7", "claim_c8", "claim_c9", "claim_c10", "claim_c11"]
