"""Decode-step attention over a slot cache, reading only the blocks that hold tokens.

The decode engine (`reasonrl.sampling.engine`) keeps one contiguous region of the cache per
decode slot: slot t of row b holds the token at position t, and `lengths[b]` counts the filled
slots. A decode step's query attends to slots [0, lengths[b]) and to its own key. Instead of
scoring all S slots (the static sampler's cost at every step), the loop visits cache blocks
[0, ceil(max(lengths) / block)) with an online softmax, so a step costs what the filled prefix
costs. The loop reads each block straight out of the all-layers cache [L, B, K, S, Dh] (a
dynamic slice at the layer's index): slicing a layer out first would copy the whole layer.

Shapes: L layers, B rows (decode slots), K key/value heads, G query heads per key/value head,
S cache slots (a multiple of the block), Dh head dim.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reasonrl.models.attention.dense import MASK_VALUE

Array = jax.Array


def slot_attention(
    q: Array,
    k: Array,
    v: Array,
    cache_keys: Array,
    cache_values: Array,
    layer: Array,
    lengths: Array,
    *,
    scale: float,
    block: int,
) -> Array:
    """One query per row attending to its filled cache slots and to itself.

    Args:
      q: [B, K, G, 1, Dh]; k, v: [B, K, 1, Dh], the new token's key and value.
      cache_keys, cache_values: [L, B, K, S, Dh], all layers (read only).
      layer: int32 scalar, the layer whose cache is read.
      lengths: int32 [B] filled slots per row; slots at or past a row's length are not read
        (their contents are undefined).
      scale: multiplies the scores (1 / sqrt(Dh)).
      block: slots per block; S must be a multiple of it.

    Returns:
      [B, K, G, 1, Dh] in q's dtype. Scores and softmax statistics are float32.
    """
    _, batch, kv_heads, slots, head_dim = cache_keys.shape
    if slots % block:
        raise ValueError(f"cache slots {slots} are not a multiple of the block {block}")
    dtype = q.dtype
    groups = q.shape[2]

    def scores(keys: Array) -> Array:  # keys [B, K, C, Dh] -> float32 [B, K, G, 1, C]
        s = jnp.einsum(
            "bkgth,bkch->bkgtc", q, keys.astype(dtype), preferred_element_type=jnp.float32
        )
        return s * scale

    def visit(index, carry):
        top, total, acc = carry
        start = index * block
        keys = jax.lax.dynamic_slice(
            cache_keys, (layer, 0, 0, start, 0), (1, batch, kv_heads, block, head_dim)
        )[0]
        values = jax.lax.dynamic_slice(
            cache_values, (layer, 0, 0, start, 0), (1, batch, kv_heads, block, head_dim)
        )[0]
        filled = (start + jnp.arange(block, dtype=jnp.int32))[None, :] < lengths[:, None]
        s = jnp.where(filled[:, None, None, None, :], scores(keys), MASK_VALUE)
        new_top = jnp.maximum(top, s.max(axis=-1, keepdims=True))
        rescale = jnp.exp(top - new_top)
        p = jnp.exp(s - new_top)
        pv = jnp.einsum("bkgtc,bkch->bkgth", p.astype(dtype), values.astype(dtype))
        return new_top, total * rescale + p.sum(axis=-1, keepdims=True), acc * rescale + pv

    # Start from the token's own key (always visible), so no row's statistics are empty.
    own = scores(k)  # [B, K, G, 1, 1]
    carry = (
        own,
        jnp.ones_like(own),
        jnp.broadcast_to(v[:, :, None], (batch, kv_heads, groups, 1, head_dim)).astype(jnp.float32),
    )
    blocks = (jnp.max(lengths) + block - 1) // block
    _, total, acc = jax.lax.fori_loop(0, blocks, visit, carry)
    return (acc / total).astype(dtype)
