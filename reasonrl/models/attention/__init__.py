"""The model's one attention function and its implementations.

`attend` is what `layers.Attention` calls: it picks an implementation with
`select_implementation` (backend, `ModelConfig.attention`, shapes) and runs it:

- `dense.dense_attention`: full [T, S] scores; decode steps and single-block inputs.
- `blockwise.blockwise_attention`: online softmax over tiles with a recomputing custom VJP,
  memory linear in the sequence; the default on CPU and for every XLA fallback.
- `kernels.cudnn_attention` (GPU) and `kernels.splash_attention` (TPU, under `shard_map`).
- `slots.slot_attention`: the decode engine's step, reading only the filled cache blocks.

Shapes: B batch, K key/value heads, G query heads per key/value head, T query length, S cache
slots, Dh head dim.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reasonrl.models.attention.blockwise import blockwise_attention
from reasonrl.models.attention.dense import MASK_VALUE, attention_mask, dense_attention
from reasonrl.models.attention.kernels import cudnn_attention, splash_attention
from reasonrl.models.attention.select import select_implementation, splash_blocks
from reasonrl.models.attention.slots import slot_attention
from reasonrl.models.config import ModelConfig

Array = jax.Array

__all__ = [
    "MASK_VALUE",
    "attend",
    "attention_mask",
    "blockwise_attention",
    "cudnn_attention",
    "dense_attention",
    "select_implementation",
    "slot_attention",
    "splash_attention",
]


def attend(
    config: ModelConfig,
    q: Array,
    k: Array,
    v: Array,
    positions: Array,
    segment_ids: Array,
    cache: tuple[Array, Array, Array, Array] | None = None,
    *,
    sharding=None,
    backend: str | None = None,
) -> Array:
    """Causal, segment-aware grouped-query attention of a block of T tokens.

    Args:
      config: the model config (`attention`, block sizes, dtype, head_dim).
      q: [B, K, G, T, Dh]; k, v: [B, K, T, Dh], this block's keys and values.
      positions, segment_ids: int [B, T] of the block (segment 0 = padding, never attended).
      cache: optional (keys [B, K, S, Dh], values [B, K, S, Dh], positions [B, S],
        segment_ids [B, S]), the cache as it was before this block; read only.
      sharding: `layers.ActivationSharding` (the splash kernel's shard_map needs the mesh).
      backend: overrides `jax.default_backend()` (tests).

    Returns:
      [B, K, G, T, Dh] in q's dtype.
    """
    length = q.shape[3]
    slots = 0 if cache is None else cache[0].shape[2]
    impl = select_implementation(
        config,
        backend or jax.default_backend(),
        query_len=length,
        key_len=slots + length,
        has_cache=cache is not None,
    )
    scale = 1.0 / math.sqrt(config.head_dim)
    if impl == "dense":
        return dense_attention(
            q, k, v, positions, segment_ids, positions, segment_ids, scale=scale, cache=cache
        )
    if impl == "cudnn":
        return cudnn_attention(q, k, v, positions, segment_ids, positions, segment_ids, scale=scale)
    if impl == "splash":
        q_block, kv_block = splash_blocks(config, length)
        return splash_attention(
            q,
            k,
            v,
            segment_ids,
            segment_ids,
            scale=scale,
            q_block=q_block,
            kv_block=kv_block,
            sharding=sharding,
        )
    k_positions, k_segment_ids = positions, segment_ids
    if cache is not None:  # one online softmax over the cache slots and the block
        keys, values, cache_positions, cache_segment_ids = cache
        k = jnp.concatenate([keys.astype(k.dtype), k], axis=2)
        v = jnp.concatenate([values.astype(v.dtype), v], axis=2)
        k_positions = jnp.concatenate([cache_positions, positions], axis=1)
        k_segment_ids = jnp.concatenate([cache_segment_ids, segment_ids], axis=1)
    return blockwise_attention(
        q,
        k,
        v,
        positions,
        segment_ids,
        k_positions,
        k_segment_ids,
        scale=scale,
        q_block=config.attention_q_block,
        kv_block=config.attention_kv_block,
    )
