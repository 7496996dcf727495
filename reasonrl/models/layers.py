"""Building blocks of the decoder: RMSNorm, RoPE, GQA attention, SwiGLU MLP.

Shapes: B batch, T query length, S key length (T without a cache, the cache size with one),
D hidden, H query heads, K key/value heads, G = H / K, Dh head dim, F MLP width, V vocabulary.

Every parameter carries logical axis names (see `reasonrl.parallel.rules`); every activation
that matters for sharding goes through `ActivationSharding.constrain`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding

from reasonrl.models import attention
from reasonrl.models.attention import MASK_VALUE, attention_mask  # noqa: F401 (re-export)
from reasonrl.models.config import ModelConfig
from reasonrl.parallel.mesh import auto_mesh
from reasonrl.parallel.rules import DEFAULT_RULES, Rules, logical_to_spec

Array = jax.Array
_MASK_VALUE = MASK_VALUE  # kept for bert.py


def _init(std: float = 0.02) -> Callable:
    return nn.initializers.normal(stddev=std)


def logical_param(module: nn.Module, name: str, init: Callable, shape, axes, dtype) -> Array:
    """Declares a parameter annotated with its logical axes."""
    return module.param(name, nn.with_logical_partitioning(init, axes), shape, dtype)


@dataclasses.dataclass(frozen=True)
class ActivationSharding:
    """Mesh + rules used to pin activation shardings inside a jitted forward pass.

    `mesh` may be any mesh over the ("data", "fsdp", "tensor") axes; the constraints are placed
    on its Auto view (`parallel.auto_mesh`), which is where `parallel.jit_on_mesh` traces.
    `None` in place of this object (single device, or letting XLA propagate) makes every
    constraint a no-op.
    """

    mesh: Mesh
    rules: Rules = DEFAULT_RULES

    def constrain(self, x: Array, axes) -> Array:
        mesh = auto_mesh(self.mesh)
        spec = logical_to_spec(axes, x.shape, mesh, self.rules)
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def constrain(sharding: ActivationSharding | None, x: Array, axes) -> Array:
    return x if sharding is None else sharding.constrain(x, axes)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * scale, normalised in float32 (as HF transformers does)."""

    eps: float
    dtype: jnp.dtype
    param_dtype: jnp.dtype
    axis_name: str = "norm"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = logical_param(
            self, "scale", nn.initializers.ones, (x.shape[-1],), (self.axis_name,), self.param_dtype
        )
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return scale.astype(self.dtype) * normed.astype(self.dtype)


def rope_inverse_frequencies(config: ModelConfig) -> np.ndarray:
    """Inverse frequencies [Dh / 2] (float32), with Llama-3 or linear scaling applied."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    scaling = config.rope_scaling
    if scaling is None:
        return inv_freq.astype(np.float32)
    if scaling.rope_type == "linear":
        return (inv_freq / scaling.factor).astype(np.float32)
    # Llama 3: keep high frequencies, divide low ones by `factor`, interpolate in between.
    old_len = scaling.original_max_position_embeddings
    low_freq_wavelen = old_len / scaling.low_freq_factor
    high_freq_wavelen = old_len / scaling.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq)
    smooth = (old_len / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return np.where(is_medium, smoothed, scaled).astype(np.float32)


def apply_rope(x: Array, positions: Array, inv_freq: np.ndarray) -> Array:
    """Rotates x [B, T, N, Dh] by positions [B, T] (HF "rotate_half" layout)."""
    freqs = positions.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq)  # [B, T, Dh/2]
    angles = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]  # [B, T, 1, Dh]
    cos, sin = jnp.cos(angles).astype(x.dtype), jnp.sin(angles).astype(x.dtype)
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


class AttentionContext(NamedTuple):
    """What attention needs besides activations; identical for every layer.

    positions / segment_ids: [B, T] for the tokens being processed.
    cache_positions / cache_segment_ids: [B, S] of the cache slots as they were *before* this
      block (None without a cache). Segment id 0 marks padding or an empty slot: never attended.
    slot_cache: the decode engine's cache (`transformer.SlotCache`: keys and values of all layers
      [L, B, K, S, Dh], lengths [B]) when the layers run a decode step over it, else None.
    """

    positions: Array
    segment_ids: Array
    cache_positions: Array | None = None
    cache_segment_ids: Array | None = None
    slot_cache: NamedTuple | None = None


class LayerCache(NamedTuple):
    """One layer's key/value cache, heads first: keys, values [B, K, S, Dh]."""

    keys: Array
    values: Array


class LayerIndex(NamedTuple):
    """The layer's index into `AttentionContext.slot_cache` (int32 scalar inside the scan)."""

    index: Array


SLOT_BLOCK = 128  # cache slots per block visited by a decode step (`attention.slot_attention`)


def slot_block(slots: int) -> int:
    """The block a decode step reads a slot cache of `slots` slots in (a divisor of it)."""
    return SLOT_BLOCK if slots % SLOT_BLOCK == 0 else slots


class Attention(nn.Module):
    """Grouped-query self-attention with optional q/k/v bias, q/k RMSNorm and a KV cache.

    Projections, norms and RoPE live here; the attention itself is `attention.attend`, which
    picks the dense, blockwise, cuDNN or splash implementation (`ModelConfig.attention`).
    """

    config: ModelConfig
    sharding: ActivationSharding | None = None

    def _project(self, name: str, x: Array, heads: int, heads_axis: str, bias: bool) -> Array:
        cfg = self.config
        kernel = logical_param(
            self,
            f"{name}_kernel",
            _init(),
            (cfg.hidden_size, heads, cfg.head_dim),
            ("embed", heads_axis, "head_dim"),
            cfg.params_dtype,
        )
        y = jnp.einsum("btd,dnh->btnh", x, kernel.astype(cfg.compute_dtype))
        if bias:
            b = logical_param(
                self,
                f"{name}_bias",
                nn.initializers.zeros,
                (heads, cfg.head_dim),
                (heads_axis, "head_dim"),
                cfg.params_dtype,
            )
            y = y + b.astype(cfg.compute_dtype)
        return y

    @nn.compact
    def __call__(
        self, x: Array, ctx: AttentionContext, cache: LayerCache | LayerIndex | None = None
    ) -> tuple[Array, LayerCache]:
        """x [B, T, D] -> ([B, T, D], this block's keys and values [B, K, T, Dh]).

        With a `LayerCache` (read only) the block also attends to every filled cache slot; with a
        `LayerIndex` it is a decode step (T = 1) over the filled slots of `ctx.slot_cache`.
        """
        cfg = self.config
        dtype = cfg.compute_dtype
        q = self._project("q", x, cfg.num_heads, "q_heads", cfg.qkv_bias)
        k = self._project("k", x, cfg.num_kv_heads, "kv_heads", cfg.qkv_bias)
        v = self._project("v", x, cfg.num_kv_heads, "kv_heads", cfg.qkv_bias)
        if cfg.qk_norm:
            norm = dict(
                eps=cfg.rms_norm_eps,
                dtype=dtype,
                param_dtype=cfg.params_dtype,
                axis_name="head_dim",
            )
            q = RMSNorm(**norm, name="q_norm")(q)
            k = RMSNorm(**norm, name="k_norm")(k)
        inv_freq = rope_inverse_frequencies(cfg)
        q = apply_rope(q, ctx.positions, inv_freq)
        k = apply_rope(k, ctx.positions, inv_freq)
        q = constrain(self.sharding, q, ("batch", "length", "q_heads", "head_dim"))

        batch, length = q.shape[:2]
        groups = cfg.num_heads // cfg.num_kv_heads
        # Heads-first layouts ([B, K, G, T, Dh] x [B, K, S, Dh]) keep the einsums plain batched
        # matmuls; XLA:CPU runs them ~2.5x faster than the equivalent [B, T, ...] forms.
        q = q.reshape(batch, length, cfg.num_kv_heads, groups, cfg.head_dim).transpose(
            0, 2, 3, 1, 4
        )
        k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)  # [B, K, T, Dh]
        # The block attends to itself and, with a cache, to the cache as it was before this
        # block: one softmax over both, so the cache is only read here (the caller writes the
        # new keys/values once for all layers).
        if isinstance(cache, LayerIndex):
            slots = ctx.slot_cache
            out = attention.slot_attention(
                q,
                k,
                v,
                slots.keys,
                slots.values,
                cache.index,
                slots.lengths,
                scale=1.0 / math.sqrt(cfg.head_dim),
                block=slot_block(slots.keys.shape[3]),
            )
        else:
            cached = None
            if cache is not None:
                cached = (cache.keys, cache.values, ctx.cache_positions, ctx.cache_segment_ids)
            out = attention.attend(
                cfg, q, k, v, ctx.positions, ctx.segment_ids, cached, sharding=self.sharding
            )
        out = out.transpose(0, 3, 1, 2, 4).reshape(batch, length, cfg.num_heads, cfg.head_dim)
        new_kv = LayerCache(k, v)

        o_kernel = logical_param(
            self,
            "o_kernel",
            _init(),
            (cfg.num_heads, cfg.head_dim, cfg.hidden_size),
            ("q_heads", "head_dim", "embed"),
            cfg.params_dtype,
        )
        y = jnp.einsum("btnh,nhd->btd", out, o_kernel.astype(dtype))
        if cfg.o_bias:
            y = y + logical_param(
                self,
                "o_bias",
                nn.initializers.zeros,
                (cfg.hidden_size,),
                ("embed",),
                cfg.params_dtype,
            ).astype(dtype)
        return y, new_kv


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    config: ModelConfig
    sharding: ActivationSharding | None = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        cfg = self.config
        dtype = cfg.compute_dtype
        shape_in, shape_out = (
            (cfg.hidden_size, cfg.intermediate_size),
            (cfg.intermediate_size, cfg.hidden_size),
        )
        gate = logical_param(
            self, "gate_kernel", _init(), shape_in, ("embed", "mlp"), cfg.params_dtype
        )
        up = logical_param(self, "up_kernel", _init(), shape_in, ("embed", "mlp"), cfg.params_dtype)
        down = logical_param(
            self, "down_kernel", _init(), shape_out, ("mlp", "embed"), cfg.params_dtype
        )
        # 2-D matmuls: XLA:CPU runs [B*T, D] x [D, F] (and its transposes) far faster than a
        # dot with two batch-like dims; on accelerators the reshape is free.
        flat = x.reshape(-1, x.shape[-1])
        hidden = nn.silu(flat @ gate.astype(dtype)) * (flat @ up.astype(dtype))
        hidden = constrain(
            self.sharding, hidden.reshape(*x.shape[:-1], -1), ("batch", "length", "mlp")
        )
        return (hidden.reshape(flat.shape[0], -1) @ down.astype(dtype)).reshape(x.shape)
