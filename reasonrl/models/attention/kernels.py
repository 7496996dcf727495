"""Accelerator kernels behind the attention interface: cuDNN flash attention (GPU) and the
Pallas splash-attention kernel (TPU).

Both take the layouts of the XLA paths (q [B, K, G, T, Dh], k and v [B, K, S, Dh], int
positions / segment ids [B, T]) and return [B, K, G, T, Dh]. They serve self-attention without
a cache (T == S) and apply the causal mask by index, which equals the model's causal-by-position
mask whenever positions increase along each segment: true for every batch reasonrl builds
(packed documents, padded rows, prompt + completion). `select.py` decides when they run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from reasonrl.models.attention.dense import attention_mask

Array = jax.Array


def _heads_last(q: Array, k: Array, v: Array) -> tuple[Array, Array, Array]:
    """[B, K, G, T, Dh], [B, K, S, Dh] -> BTNH layouts [B, T, H, Dh], [B, S, K, Dh]."""
    batch, heads, groups, length, dim = q.shape
    q = q.transpose(0, 3, 1, 2, 4).reshape(batch, length, heads * groups, dim)
    return q, k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)


def cudnn_attention(
    q: Array,
    k: Array,
    v: Array,
    q_positions: Array,
    q_segment_ids: Array,
    k_positions: Array,
    k_segment_ids: Array,
    *,
    scale: float,
) -> Array:
    """cuDNN flash attention via `jax.nn.dot_product_attention(implementation="cudnn")`.

    The kernel runs with its causal mask type (it skips tiles above the diagonal); packing and
    padding enter as a boolean mask [B, 1, T, S], which jax turns into one additive bias shared
    by all heads (2 bytes per entry in bfloat16). q, k, v must be float16 or bfloat16.
    """
    batch, heads, groups, length, dim = q.shape
    q_btnh, k_bsnh, v_bsnh = _heads_last(q, k, v)
    mask = attention_mask(q_positions, q_segment_ids, k_positions, k_segment_ids)[:, 0]
    out = jax.nn.dot_product_attention(
        q_btnh,
        k_bsnh,
        v_bsnh,
        mask=mask,
        scale=scale,
        is_causal=True,
        implementation="cudnn",
    )  # [B, T, H, Dh]
    return out.reshape(batch, length, heads, groups, dim).transpose(0, 2, 3, 1, 4)


def splash_attention(
    q: Array,
    k: Array,
    v: Array,
    q_segment_ids: Array,
    k_segment_ids: Array,
    *,
    scale: float,
    q_block: int,
    kv_block: int,
    sharding=None,
    interpret: bool = False,
) -> Array:
    """The Pallas TPU splash-attention kernel (causal mask, segment ids, GQA), batch-vmapped.

    Args:
      q: [B, K, G, T, Dh]; k, v: [B, K, T, Dh]; q_segment_ids, k_segment_ids: int [B, T].
      scale: applied to q (the kernel does not scale).
      q_block, kv_block: the kernel's tiles (forward and both backward kernels); must divide T,
        kv_block a multiple of 128.
      sharding: `layers.ActivationSharding` or None. With a mesh the kernel runs under
        `shard_map`: rows split over the "batch" mesh axes, heads over the "q_heads" /
        "kv_heads" axes when both split alike (else replicated), the sequence unsplit.
      interpret: run the kernel in the Pallas interpreter (tests on CPU).

    Returns:
      [B, K, G, T, Dh] in q's dtype. Padding queries (segment 0) attend to padding keys, so
      their rows are finite; callers mask them out.
    """
    from jax.experimental.pallas.ops.tpu import splash_attention as splash

    batch, heads, groups, length, dim = q.shape
    q_heads = (q * jnp.asarray(scale, q.dtype)).reshape(batch, heads * groups, length, dim)
    sizes = splash.BlockSizes(
        block_q=q_block,
        block_kv=kv_block,
        block_kv_compute=kv_block,
        block_q_dkv=q_block,
        block_kv_dkv=kv_block,
        block_kv_dkv_compute=kv_block,
        block_q_dq=q_block,
        block_kv_dq=kv_block,
    )

    def run(q_local, k_local, v_local, q_seg, k_seg):
        local_heads = q_local.shape[1]
        mask = splash.MultiHeadMask([splash.CausalMask((length, length))] * local_heads)
        kernel = splash.make_splash_mha(
            mask, block_sizes=sizes, head_shards=1, q_seq_shards=1, interpret=interpret
        )
        segments = splash.SegmentIds(q=q_seg, kv=k_seg)
        return jax.vmap(kernel)(q_local, k_local, v_local, segment_ids=segments)

    args = (q_heads, k, v, q_segment_ids, k_segment_ids)
    if sharding is None:
        out = run(*args)
    else:
        out = _shard_over_mesh(run, args, sharding)
    return out.reshape(batch, heads, groups, length, dim)


def _shard_over_mesh(run, args, sharding):
    """`shard_map(run)` with batch and (when q and kv heads split alike) head sharding."""
    from reasonrl.parallel.mesh import auto_mesh
    from reasonrl.parallel.rules import logical_to_spec

    q_heads, k = args[0], args[1]
    mesh = auto_mesh(sharding.mesh)
    q_spec = logical_to_spec(
        ("batch", "q_heads", "length", "head_dim"), q_heads.shape, mesh, sharding.rules
    )
    k_spec = logical_to_spec(
        ("batch", "kv_heads", "length", "head_dim"), k.shape, mesh, sharding.rules
    )
    rows = q_spec[0]
    head_axis = q_spec[1] if q_spec[1] == k_spec[1] else None
    qkv = PartitionSpec(rows, head_axis, None, None)
    segments = PartitionSpec(rows, None)
    return jax.shard_map(
        run,
        mesh=mesh,
        in_specs=(qkv, qkv, qkv, segments, segments),
        out_specs=qkv,
        check_vma=False,
    )(*args)
