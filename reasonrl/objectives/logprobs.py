"""Per-token log-probabilities without materialising [B, T, V] logits.

The sequence is cut into chunks of C positions; each chunk's logits [B, C, V] are computed,
reduced to per-token statistics and dropped. The chunk function is rematerialised, so the
backward pass recomputes one chunk's logits at a time as well: peak memory is O(B * C * V)
instead of O(B * T * V).

Vocabulary parallelism: when `sharding` (the model's ActivationSharding) shards the LM head's
vocabulary over mesh axes of size > 1 (the "vocab" rule, `tensor` by default), each chunk goes
through `reasonrl.parallel.vocab_parallel.chunk_statistics`, a `shard_map` in which each device
computes its [B, C, V/t] slice of the logits and the max / sum-exp / target logit / entropy
terms are combined with explicit `pmax` / `psum`: no [B, C, V] logits are ever gathered. The
chunking and rematerialisation are the same on both paths. With tensor == 1, no sharding, or a
vocabulary the rules leave replicated (V not divisible by the tensor axis), the plain path below
runs unchanged. Every objective gets this through `token_statistics`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from reasonrl.models import logits_from_hidden
from reasonrl.models.config import ModelConfig
from reasonrl.parallel.vocab_parallel import chunk_statistics, output_kernel, vocab_parallel_plan


class TokenStats(NamedTuple):
    """Per-token statistics, each float32 [B, T] (argmax_match: 1.0 where target is the argmax;
    entropy is zeros unless requested)."""

    logprobs: jax.Array
    logsumexp: jax.Array
    entropy: jax.Array
    argmax_match: jax.Array


def token_statistics(
    config: ModelConfig,
    params,
    hidden: jax.Array,
    targets: jax.Array,
    *,
    chunk_size: int = 256,
    temperature: float = 1.0,
    entropy: bool = False,
    sharding=None,
) -> TokenStats:
    """log p(target) and friends for hidden [B, T, D], targets int32 [B, T].

    `temperature` divides the logits first (RL objectives score samples drawn at T != 1 under
    the tempered distribution when configured to). `entropy` adds a full softmax pass.
    """
    batch, length, _ = hidden.shape
    chunk = min(chunk_size, length)
    pad = -length % chunk
    if pad:
        hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
        targets = jnp.pad(targets, ((0, 0), (0, pad)))
    num_chunks = hidden.shape[1] // chunk
    plan = vocab_parallel_plan(config, params, hidden.shape, sharding)

    def one_chunk(args):
        h, t = args  # [B, C, D], [B, C]
        if plan is not None:
            kernel = output_kernel(config, params)
            return TokenStats(
                *chunk_statistics(
                    plan, config, kernel, h, t, temperature=temperature, entropy=entropy
                )
            )
        logits = logits_from_hidden(config, params, h, sharding=sharding)
        if temperature != 1.0:
            logits = logits / temperature
        lse = jax.nn.logsumexp(logits, axis=-1)
        target_logit = jnp.take_along_axis(logits, t[..., None], axis=-1)[..., 0]
        if entropy:
            token_entropy = lse - jnp.sum(jax.nn.softmax(logits, axis=-1) * logits, axis=-1)
        else:
            token_entropy = jnp.zeros_like(lse)
        match = (target_logit >= jnp.max(logits, axis=-1)).astype(jnp.float32)
        return TokenStats(target_logit - lse, lse, token_entropy, match)

    if num_chunks == 1:  # the logits exist in full anyway: no recomputation needed
        return jax.tree.map(lambda x: x[:, :length], one_chunk((hidden, targets)))
    one_chunk = jax.checkpoint(one_chunk)
    h_chunks = hidden.reshape(batch, num_chunks, chunk, -1).swapaxes(0, 1)
    t_chunks = targets.reshape(batch, num_chunks, chunk).swapaxes(0, 1)
    stats = jax.lax.map(one_chunk, (h_chunks, t_chunks))  # each [N, B, C]
    return jax.tree.map(lambda x: x.swapaxes(0, 1).reshape(batch, -1)[:, :length], stats)
