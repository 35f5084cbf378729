"""The claims of the two texts (C1 to C11), each judged on an `Evidence` object by a rule stated beside its
verdict, on the conditions where its preconditions hold (docs/claims.md). This layer judges; `report`
renders what it returns. A claim is a function decorated with `judging.claim` in any module of this
package: importing the package loads every module, so adding a claim touches one file."""

import importlib
import pkgutil

from .judging import CLAIMS, REGISTRY, Claim, Evidence, Judgement, claim, claims_markdown, claims_table, has_gap, registered

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

from .biases import claim_c5, claim_c6, claim_c7  # noqa: E402
from .deception import claim_c10, claim_c11  # noqa: E402
from .training import claim_c1, claim_c2, claim_c3, claim_c4, claim_c8, claim_c9  # noqa: E402

__all__ = ["CLAIMS", "REGISTRY", "Claim", "Evidence", "Judgement", "claim", "claims_markdown", "claims_table", "has_gap", "registered",
           "claim_c1", "claim_c2", "claim_c3", "claim_c4", "claim_c5", "claim_c6", "claim_c7", "claim_c8", "claim_c9", "claim_c10", "claim_c11"]
