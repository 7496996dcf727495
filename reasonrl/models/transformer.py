"""The decoder-only LM: embeddings, a scanned stack of blocks, final norm, LM head.

One implementation serves training (no cache) and generation (a KV cache passed in and returned
explicitly, never hidden in a mutable collection). Layers are stacked with `nn.scan`, so every
per-layer parameter has a leading "layers" axis [L, ...] and compile time does not grow with L.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from reasonrl.models.config import ModelConfig
from reasonrl.models.layers import (
    MLP,
    ActivationSharding,
    Attention,
    AttentionContext,
    LayerCache,
    LayerIndex,
    RMSNorm,
    _init,
    constrain,
)

Array = jax.Array

# `ModelConfig.remat` -> the `jax.checkpoint` policy of each decoder block (None: no remat).
REMAT_POLICIES = {
    "none": None,
    # Keep only the block's input; recompute the whole block in the backward pass.
    "full": jax.checkpoint_policies.nothing_saveable,
    # Keep the outputs of matmuls without batch dimensions (q/k/v/o and MLP projections);
    # recompute norms, RoPE, activations and attention (whose custom VJP keeps its own output).
    "save_matmul_outputs": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class KVCache(NamedTuple):
    """Generation state for all layers.

    keys, values: [L, B, K, S, Dh] in the compute dtype (heads first: attention reads the cache
      as a plain batched matmul operand, without transposing it).
    positions: [B, S] int32 position of the token in each slot.
    segment_ids: [B, S] int32; 0 marks an empty (or padding) slot that is never attended to.
    """

    keys: Array
    values: Array
    positions: Array
    segment_ids: Array

    @classmethod
    def empty(cls, config: ModelConfig, batch_size: int, max_length: int) -> KVCache:
        shape = (config.num_layers, batch_size, config.num_kv_heads, max_length, config.head_dim)
        zeros = jnp.zeros(shape, config.compute_dtype)
        slots = jnp.zeros((batch_size, max_length), jnp.int32)
        return cls(zeros, zeros, slots, slots)


class SlotCache(NamedTuple):
    """The decode engine's cache: one contiguous region per decode slot (row).

    keys, values: [L, B, K, S, Dh] in the compute dtype; slot t of row b holds the token at
      position t (prompts start at slot 0, so a row's tokens fill slots [0, lengths[b])).
    lengths: int32 [B] filled slots per row; slots past it are free and never read.
    """

    keys: Array
    values: Array
    lengths: Array

    @classmethod
    def empty(cls, config: ModelConfig, batch_size: int, slots: int) -> SlotCache:
        shape = (config.num_layers, batch_size, config.num_kv_heads, slots, config.head_dim)
        zeros = jnp.zeros(shape, config.compute_dtype)
        return cls(zeros, zeros, jnp.zeros((batch_size,), jnp.int32))


class DecoderBlock(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x))."""

    config: ModelConfig
    sharding: ActivationSharding | None = None

    @nn.compact
    def __call__(
        self, x: Array, ctx: AttentionContext, cache: LayerCache | None
    ) -> tuple[Array, LayerCache | None]:
        """x [B, T, D] -> (x, this block's new keys/values if a cache is in use, else None)."""
        cfg = self.config
        norm = dict(eps=cfg.rms_norm_eps, dtype=cfg.compute_dtype, param_dtype=cfg.params_dtype)
        attn_out, new_kv = Attention(cfg, self.sharding, name="attn")(
            RMSNorm(**norm, name="input_norm")(x), ctx, cache
        )
        x = constrain(self.sharding, x + attn_out, ("batch", "length", "activation_embed"))
        mlp_out = MLP(cfg, self.sharding, name="mlp")(
            RMSNorm(**norm, name="post_attention_norm")(x)
        )
        x = constrain(self.sharding, x + mlp_out, ("batch", "length", "activation_embed"))
        return x, (None if cache is None else new_kv)


class CausalLM(nn.Module):
    """Decoder-only language model (Qwen2/2.5, Qwen3, Llama 3.x).

    `__call__` returns final hidden states so losses can compute log-probs in chunks without
    materialising [B, T, V]; `logits` applies the LM head.
    """

    config: ModelConfig
    sharding: ActivationSharding | None = None

    def setup(self):
        cfg = self.config
        block = DecoderBlock
        policy = REMAT_POLICIES[cfg.remat]
        if policy is not None:
            block = nn.remat(block, prevent_cse=False, policy=policy)
        self.layers = nn.scan(
            block,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(nn.broadcast, 0),
            length=cfg.num_layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )(cfg, self.sharding, name="layers")
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(_init(), ("vocab", "embed")),
            (cfg.vocab_size, cfg.hidden_size),
            cfg.params_dtype,
        )
        self.final_norm = RMSNorm(
            cfg.rms_norm_eps, cfg.compute_dtype, cfg.params_dtype, name="final_norm"
        )
        if not cfg.tie_word_embeddings:
            self.lm_head = self.param(
                "lm_head",
                nn.with_logical_partitioning(_init(), ("embed", "vocab")),
                (cfg.hidden_size, cfg.vocab_size),
                cfg.params_dtype,
            )

    def __call__(
        self,
        tokens: Array,
        positions: Array,
        segment_ids: Array,
        cache: KVCache | None = None,
        cache_index: Array | None = None,
    ) -> tuple[Array, KVCache | None]:
        """Final hidden states.

        Args:
          tokens: int32 [B, T].
          positions: int32 [B, T] RoPE positions.
          segment_ids: int32 [B, T]; tokens attend only within their segment; 0 = padding.
          cache: optional KVCache; the block attends to every filled slot of the cache and is
            written into slots [cache_index, cache_index + T), which must be empty (segment 0).
          cache_index: scalar int32 slot index (required with a cache).

        Returns:
          hidden [B, T, D] in the compute dtype, and the updated cache (or None).
        """
        cfg = self.config
        x = jnp.take(self.embedding, tokens, axis=0).astype(cfg.compute_dtype)
        x = constrain(self.sharding, x, ("batch", "length", "activation_embed"))
        if cache is None:
            x, _ = self.layers(x, AttentionContext(positions, segment_ids), None)
            return self.final_norm(x), None
        ctx = AttentionContext(positions, segment_ids, cache.positions, cache.segment_ids)
        x, new_kv = self.layers(
            x, ctx, LayerCache(cache.keys, cache.values)
        )  # each [L, B, K, T, Dh]
        write = functools.partial(jax.lax.dynamic_update_slice_in_dim, start_index=cache_index)
        cache = KVCache(
            write(cache.keys, new_kv.keys.astype(cache.keys.dtype), axis=3),
            write(cache.values, new_kv.values.astype(cache.values.dtype), axis=3),
            write(cache.positions, positions, axis=1),
            write(cache.segment_ids, segment_ids, axis=1),
        )
        return self.final_norm(x), cache

    def decode_slots(self, tokens: Array, cache: SlotCache) -> tuple[Array, SlotCache]:
        """One decode step of every row over a slot cache.

        Args:
          tokens: int32 [B], each row's newest token, at position `cache.lengths[b]`.
          cache: the rows' caches; the step attends to each row's filled slots only.

        Returns:
          hidden [B, 1, D], and the cache with each token's keys/values written at slot
          `lengths[b]` (rows at a full cache write nothing) and lengths one larger.
        """
        cfg = self.config
        positions = cache.lengths[:, None]
        x = jnp.take(self.embedding, tokens[:, None], axis=0).astype(cfg.compute_dtype)
        x = constrain(self.sharding, x, ("batch", "length", "activation_embed"))
        ctx = AttentionContext(positions, jnp.ones_like(positions), slot_cache=cache)
        layers = LayerIndex(jnp.arange(cfg.num_layers, dtype=jnp.int32))
        x, new_kv = self.layers(x, ctx, layers)  # keys/values [L, B, K, 1, Dh]

        def write(buffer, new):  # [L, B, K, S, Dh] <- [L, B, K, 1, Dh] at slot lengths[b]
            rows = jnp.arange(buffer.shape[1])
            return buffer.at[:, rows, :, cache.lengths].set(
                jnp.moveaxis(new[:, :, :, 0].astype(buffer.dtype), 1, 0), mode="drop"
            )

        cache = SlotCache(
            write(cache.keys, new_kv.keys), write(cache.values, new_kv.values), cache.lengths + 1
        )
        return self.final_norm(x), cache

    def logits(self, hidden: Array) -> Array:
        """hidden [..., D] -> float32 logits [..., V]."""
        cfg = self.config
        kernel = self.embedding.T if cfg.tie_word_embeddings else self.lm_head
        logits = jnp.einsum(
            "...d,dv->...v",
            hidden,
            kernel.astype(cfg.compute_dtype),
            preferred_element_type=jnp.float32,
        )
        if logits.ndim == 3:
            logits = constrain(self.sharding, logits, ("batch", "length", "vocab"))
        return logits

    def init_all(self, tokens: Array) -> Array:
        """Touches every parameter (used only by `init`)."""
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        hidden, _ = self(tokens, positions, jnp.ones_like(tokens))
        return self.logits(hidden)
