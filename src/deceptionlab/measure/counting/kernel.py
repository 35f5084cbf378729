"""The NNGP kernel of the lab's MLP: the covariance of the policy logit over random initialisations,
in the limit of infinite width (Neal 1996; Lee et al. 2018; Cho and Saul 2009 for ReLU).

For a layer z_{l+1} = W h_l + b with weights of variance sigma_w^2 / fan_in and biases of variance
sigma_b^2, the preactivations of every layer are Gaussian processes in the limit, with
    K_1(x, x')     = sigma_b1^2 + sigma_w1^2 * x . x' / n_in
    K_{l+1}(x, x') = sigma_b^2 + sigma_w^2 * E[relu(u) relu(v)],  (u, v) ~ N(0, K_l on {x, x'})
and for ReLU the expectation is the arc-cosine kernel of degree 1:
    sqrt(K_l(x,x) K_l(x',x')) / (2 pi) * (sin t + (pi - t) cos t),  cos t = the correlation.

The lab's init (`MLPEnsemble.init`, PyTorch's nn.Linear default) draws weights AND biases from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)): variance 1/(3 fan_in) each. So sigma_w^2 = fan_in * Var(w) = 1/3 at
every layer, and the bias variance is 1/(3 fan_in): 1/(3 n_in) at the first layer, 1/(3 width) after.
The bias term of the hidden layers vanishes as the width grows; it is kept at the config's width, the
init actually used. Only the sign of the logit matters, so the overall scale of K is irrelevant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayerVariances:
    """sigma_w^2 (fan_in * Var(w)) and sigma_b^2 (Var(b)) of each layer, input layer first, readout last."""

    weight: tuple[float, ...]
    bias: tuple[float, ...]

    @classmethod
    def torch_default(cls, n_in: int, depth: int, width: int) -> "LayerVariances":
        """PyTorch's nn.Linear default (the lab's init): U(+-b), b = 1/sqrt(fan_in), so Var = b^2/3."""
        fan_ins = [n_in] + [width] * depth  # one per layer: depth hidden layers, then the readout
        return cls(tuple(1 / 3 for _ in fan_ins), tuple(1 / (3 * f) for f in fan_ins))

    @classmethod
    def scaled(cls, n_in: int, depth: int, width: int, weight_scale: float) -> "LayerVariances":
        """The default with every weight variance multiplied by `weight_scale` (ordered vs chaotic regimes)."""
        base = cls.torch_default(n_in, depth, width)
        return cls(tuple(w * weight_scale for w in base.weight), base.bias)


def nngp_kernel(x: np.ndarray, variances: LayerVariances) -> np.ndarray:
    """The NNGP kernel of the readout logit over the rows of x (M, n_in): (M, M) float64."""
    x = np.asarray(x, np.float64)
    n_in = x.shape[1]
    k = variances.bias[0] + variances.weight[0] * (x @ x.T) / n_in
    for sw2, sb2 in zip(variances.weight[1:], variances.bias[1:]):
        k = sb2 + sw2 * relu_expectation(k)
    return k


def relu_expectation(k: np.ndarray) -> np.ndarray:
    """E[relu(u) relu(v)] for (u, v) jointly Gaussian with covariance k, elementwise over a kernel matrix."""
    d = np.sqrt(np.clip(np.diag(k), 0, None))
    norm = np.outer(d, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, k / norm, 0.0)
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    return norm / (2 * math.pi) * (np.sin(theta) + (math.pi - theta) * np.cos(theta))


def jittered_cholesky(k: np.ndarray, jitter: float = 1e-6, relative: bool = True) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of k + eps I with eps = jitter * mean(diag k) (or jitter itself when not
    `relative`), raised tenfold until it factorises; returns (L, eps).

    Why jitter: the arc-cosine kernel on inputs in a 12-dimensional space has eigenvalues that fall
    over many orders of magnitude, so k is numerically singular and Cholesky fails in float64. Adding
    eps I is the same as adding independent N(0, eps) noise to each latent: it can flip a sign only where
    |f(x)| < a few sqrt(eps), which at eps = 1e-6 * the prior variance flips about 4e-4 of the prior's signs per
    input at most, and it keeps every sign pattern of positive density (the sampler needs a full-rank prior)."""
    import torch  # torch's LAPACK: numpy's threaded BLAS slowed 10x on the shared machine

    eps = jitter * float(np.mean(np.diag(k))) if relative else jitter
    t = torch.from_numpy(np.asarray(k, np.float64))
    eye = torch.eye(len(k), dtype=torch.float64)
    for _ in range(8):
        l, info = torch.linalg.cholesky_ex(t + eps * eye)
        if int(info) == 0:
            return l.numpy(), eps
        eps *= 10
    raise np.linalg.LinAlgError(f"kernel not positive definite even with jitter {eps:.3g}")
