"""G-Vendi (Jung et al. 2025): the Vendi score of unit-normalised projected gradients.

    G-Vendi = exp(-Σ_k λ_k log λ_k),   λ = eigenvalues of Σ = (1/N) Σ_i ĝ_i ĝ_iᵀ   (d x d)

with 0 · log 0 = 0. Σ has trace 1 and the same non-zero spectrum as the N x N kernel K/N, which
is never built: cost O(N d² + d³). N identical features give 1, N orthonormal ones give N.

* :func:`g_vendi`: one feature matrix, in float64 NumPy (``reasonrl.diversity.vendi_score``, the
  plain Vendi score of any embedding matrix, is the same computation: this calls it).
* :func:`masked_vendi`: the jitted JAX form over a row mask, for many subsets at once (random
  baselines, the greedy selector) inside device code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from reasonrl.diversity.vendi import vendi_score


def g_vendi(features: np.ndarray, valid: np.ndarray | None = None) -> float:
    """G-Vendi of float [N, d] gradient features (rows where ``valid`` (bool [N]) is False, e.g.
    examples without a response token, are left out)."""
    features = np.asarray(features)
    if valid is not None:
        features = features[np.asarray(valid, bool)]
    return vendi_score(features)


def spectral_entropy(covariance: jax.Array) -> jax.Array:
    """-Σ λ log λ over the eigenvalues of a symmetric [d, d] matrix of trace 1 (0 log 0 = 0;
    round-off negatives count as 0). Traceable."""
    eigenvalues = jnp.clip(jnp.linalg.eigvalsh(covariance), 0.0, None)
    safe = jnp.where(eigenvalues > 0, eigenvalues, 1.0)
    return -jnp.sum(jnp.where(eigenvalues > 0, eigenvalues * jnp.log(safe), 0.0))


@jax.jit
def masked_vendi(unit_features: jax.Array, mask: jax.Array) -> jax.Array:
    """Vendi score of the rows of float [N, d] unit features where ``mask`` (bool [..., N]) is
    True; a leading mask batch gives one score per mask ([...]). Traceable and jitted."""

    def one(row_mask):
        weights = row_mask.astype(unit_features.dtype)
        covariance = (unit_features.T * weights) @ unit_features / jnp.sum(weights)
        return jnp.exp(spectral_entropy(covariance))

    flat = mask.reshape(-1, mask.shape[-1])
    return jax.vmap(one)(flat).reshape(mask.shape[:-1])
