"""Vocabulary-parallel log-softmax statistics: an explicit `shard_map` over the vocab axis.

When the output projection's vocabulary dimension is sharded over mesh axes (the "vocab" rule:
`tensor` by default), each device holds a [D, V/t] slice of the LM head. Left to itself, XLA may
all-gather the [B, C, V] logits to take a max / logsumexp / target gather over the full row.
`chunk_statistics` instead computes the per-shard logits [B_local, C, V/t] and combines scalars
per token with explicit collectives:

    m            = pmax(max_v logits)             (stop_gradient: it only stabilises exp)
    logsumexp    = m + log(psum(Σ_v exp(logits - m)))
    target_logit = psum(logit at the target, 0 on the shards that do not own it)
    entropy      = logsumexp - psum(Σ_v softmax · logits)
    argmax_match = target_logit >= m              (no gradient)

Gradients flow through psum (its transpose is a broadcast); pmax is only ever applied to
stop-gradient values. Nothing of shape [*, *, V] is gathered.

`vocab_parallel_plan` decides whether the path applies: the params are a decoder's (top-level
`embedding` / `lm_head`), the activation sharding has a mesh whose "vocab" rule splits V over
axes of size > 1 (V divisible: otherwise `logical_to_spec` replicates the vocabulary and there
is nothing to do), and those axes are disjoint from the batch axes. Otherwise callers use the
plain path. (Callers that pass no activation sharding, leaving XLA to propagate, get the plain
path even with vocab-sharded params. On XLA:CPU at test sizes the SPMD partitioner also happens
to reduce the plain path's sharded logits without gathering them; this path makes that a
guarantee rather than a compiler choice.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P

from reasonrl.parallel.mesh import auto_mesh
from reasonrl.parallel.rules import logical_to_spec


def _axes(entry) -> tuple[str, ...]:
    return () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)


@dataclasses.dataclass(frozen=True)
class VocabPlan:
    mesh: jax.sharding.Mesh  # the Auto view
    vocab_axes: tuple[str, ...]
    batch_axes: tuple[str, ...]
    num_shards: int


def vocab_parallel_plan(config, params, hidden_shape, sharding) -> VocabPlan | None:
    """A VocabPlan when the vocab-parallel path applies, else None (use the plain path)."""
    if sharding is None or not isinstance(params, Mapping):
        return None
    key = "embedding" if config.tie_word_embeddings else "lm_head"
    if key not in params:
        return None
    mesh = auto_mesh(sharding.mesh)
    rules = sharding.rules
    vocab_axes = _axes(logical_to_spec(("vocab",), (config.vocab_size,), mesh, rules)[0])
    if not vocab_axes:
        return None
    batch_axes = _axes(logical_to_spec(("batch",), (hidden_shape[0],), mesh, rules)[0])
    if set(batch_axes) & set(vocab_axes):
        return None
    num_shards = 1
    for a in vocab_axes:
        num_shards *= mesh.shape[a]
    return VocabPlan(mesh, vocab_axes, batch_axes, num_shards)


def output_kernel(config, params) -> jax.Array:
    """The LM head as [D, V] (the embedding transposed when tied), as `CausalLM.logits` uses."""
    return params["embedding"].T if config.tie_word_embeddings else params["lm_head"]


def chunk_statistics(
    plan: VocabPlan,
    config,
    kernel: jax.Array,
    hidden: jax.Array,
    targets: jax.Array,
    *,
    temperature: float = 1.0,
    entropy: bool = False,
):
    """(logprobs, logsumexp, entropy, argmax_match), each float32 [B, C], for hidden [B, C, D],
    targets int32 [B, C] and kernel [D, V], the vocabulary split over `plan.vocab_axes`."""
    axis = plan.vocab_axes[0] if len(plan.vocab_axes) == 1 else plan.vocab_axes
    rows = plan.batch_axes[0] if len(plan.batch_axes) == 1 else (plan.batch_axes or None)
    local_vocab = config.vocab_size // plan.num_shards

    def local(h, t, w):  # [b, C, D], [b, C], [D, V/t]
        logits = jnp.einsum(
            "...d,dv->...v",
            h,
            w.astype(config.compute_dtype),
            preferred_element_type=jnp.float32,
        )
        if temperature != 1.0:
            logits = logits / temperature
        m = lax.pmax(jnp.max(lax.stop_gradient(logits), axis=-1), axis)
        sum_exp = lax.psum(jnp.sum(jnp.exp(logits - m[..., None]), axis=-1), axis)
        lse = m + jnp.log(sum_exp)
        offset = lax.axis_index(axis) * local_vocab
        idx = t - offset
        owned = (idx >= 0) & (idx < local_vocab)
        picked = jnp.take_along_axis(logits, jnp.clip(idx, 0, local_vocab - 1)[..., None], -1)
        target_logit = lax.psum(jnp.where(owned, picked[..., 0], 0.0), axis)
        if entropy:
            p = jnp.exp(logits - lse[..., None])
            token_entropy = lse - lax.psum(jnp.sum(p * logits, axis=-1), axis)
        else:
            token_entropy = jnp.zeros_like(lse)
        match = (lax.stop_gradient(target_logit) >= m).astype(jnp.float32)
        return target_logit - lse, lse, token_entropy, match

    out = P(rows, None)
    return jax.shard_map(
        local,
        mesh=plan.mesh,
        in_specs=(P(rows, None, None), P(rows, None), P(None, axis)),
        out_specs=(out, out, out, out),
    )(hidden, targets, kernel)
