"""The dense attention path: full [T, S] score matrices, one softmax.

Shapes: B batch, K key/value heads, G query heads per key/value head, T query length, S key
length, Dh head dim. Queries are heads first [B, K, G, T, Dh], keys and values [B, K, S, Dh]:
the einsums are then plain batched matmuls (XLA:CPU runs them ~2.5x faster than [B, T, ...]).

Memory grows with T * S (scores and probabilities are kept for the backward pass), so this path
serves decode steps (T = 1, S = the cache), single-block inputs and reference tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
MASK_VALUE = float(np.finfo(np.float32).min)


def attention_mask(q_positions, q_segment_ids, k_positions, k_segment_ids) -> Array:
    """Boolean [B, 1, 1, T, S]: causal by position, within one segment, never to padding.

    q_positions / q_segment_ids: int [B, T]; k_positions / k_segment_ids: int [B, S].
    Segment id 0 marks padding (or an empty cache slot) and is never attended to.
    """
    q_pos, k_pos = q_positions[:, :, None], k_positions[:, None, :]
    q_seg, k_seg = q_segment_ids[:, :, None], k_segment_ids[:, None, :]
    mask = (k_pos <= q_pos) & (q_seg == k_seg) & (k_seg != 0)
    return mask[:, None, None, :, :]


def dense_attention(
    q: Array,
    k: Array,
    v: Array,
    q_positions: Array,
    q_segment_ids: Array,
    k_positions: Array,
    k_segment_ids: Array,
    *,
    scale: float,
    cache: tuple[Array, Array, Array, Array] | None = None,
) -> Array:
    """softmax(q kᵀ * scale + mask) v with one softmax over the cache and the block.

    Args:
      q: [B, K, G, T, Dh]; k, v: [B, K, T, Dh] (this block's keys and values).
      q_positions, q_segment_ids, k_positions, k_segment_ids: int [B, T].
      scale: multiplies the scores (1 / sqrt(Dh)).
      cache: optional (keys [B, K, S, Dh], values [B, K, S, Dh], positions [B, S],
        segment_ids [B, S]) attended to together with the block, read only.

    Returns:
      [B, K, G, T, Dh] in q's dtype. Scores and softmax are float32. A row with no visible key
      (a padding query) is the mean of all values: callers mask such rows out.
    """
    dtype = q.dtype

    def scores(keys, mask):
        s = jnp.einsum("bkgth,bksh->bkgts", q, keys, preferred_element_type=jnp.float32)
        return jnp.where(mask, s * scale, MASK_VALUE)

    block_scores = scores(k, attention_mask(q_positions, q_segment_ids, k_positions, k_segment_ids))
    if cache is None:
        probs = jax.nn.softmax(block_scores, axis=-1).astype(dtype)
        return jnp.einsum("bkgts,bksh->bkgth", probs, v)
    cache_keys, cache_values, cache_positions, cache_segment_ids = cache
    cached_scores = scores(
        cache_keys.astype(dtype),
        attention_mask(q_positions, q_segment_ids, cache_positions, cache_segment_ids),
    )
    slots = cached_scores.shape[-1]
    probs = jax.nn.softmax(jnp.concatenate([cached_scores, block_scores], axis=-1), axis=-1).astype(
        dtype
    )
    return jnp.einsum(
        "bkgts,bksh->bkgth", probs[..., :slots], cache_values.astype(dtype)
    ) + jnp.einsum("bkgts,bksh->bkgth", probs[..., slots:], v)
