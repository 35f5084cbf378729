"""The counting argument measured (issue 15, claim C5): P_B(class | S) of the NNGP of the lab's MLP,
exactly conditioned on the training data, beside the naive count, P_prior and P_SGD (docs/counting.md).

- `kernel`: the NNGP kernel (arc-cosine recursion) with the init's variances;
- `sampler`: elliptical slice sampling of the sign-conditioned GP, rejection, effective sample sizes;
- `classes`: the lab's verdict rule on the samples, per source, with intervals and -log2 P;
- `finite`: the same posterior of the finite-width networks themselves (elliptical slice in weight space);
- `functions`: P_B(f | S) vs P_SGD(f | S) on held-out inputs (the function level);
- `table`: the four sources side by side for a results folder.
"""

from .classes import Posterior, Problem, judge_signs, naive_classes, nngp_classes, nngp_rejection, shares
from .finite import FinitePosterior, Networks, finite_classes, network_rejection
from .kernel import LayerVariances, nngp_kernel
from .sampler import Conditional, effective_sample_size, elliptical_slice, rejection

__all__ = ["Conditional", "FinitePosterior", "Networks", "finite_classes", "network_rejection", "LayerVariances", "Posterior", "Problem", "effective_sample_size", "elliptical_slice", "judge_signs",
           "naive_classes", "nngp_classes", "nngp_kernel", "nngp_rejection", "rejection", "shares"]
