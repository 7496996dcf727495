"""Sampling math on float32 logits: temperature, top-k, top-p (nucleus), per-row keys, draws.

Pure, traceable functions with no Python loops over tokens or rows. Shapes: B rows, V vocabulary.

Ties are broken deterministically everywhere: tokens are ranked by descending logit and, among
equal logits, lower token id first (that one is kept when a top-k or top-p cut falls inside a
tie); greedy picks the lowest id among the maxima (`argmax`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class SampledTokens(NamedTuple):
    """One decoding step for B rows.

    tokens: int32 [B] chosen token ids.
    logprobs: float32 [B] log-probability of each token under the untempered model.
    sampling_logprobs: float32 [B] log-probability under the distribution actually sampled from
      (tempered and filtered); 0 for greedy.
    """

    tokens: Array
    logprobs: Array
    sampling_logprobs: Array


def _order_keys(x: Array) -> Array:
    """uint32 keys with the same order as float32 x (-inf lowest, +inf highest)."""
    bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
    negative = (bits >> 31) == 1
    return jnp.where(negative, ~bits, bits | jnp.uint32(0x80000000))


def _keep_top_weight(keys: Array, weights: Array, target: Array) -> Array:
    """Keeps the smallest set of highest-key entries whose weight reaches `target`, per row.

    Equivalent to: rank entries by key, descending, ties by lower index first; keep an entry iff
    the weight ranked strictly before it is < target. Instead of sorting (slow on XLA:CPU) it
    bisects, over the 2^32 key values, for the boundary key t = the largest key with
    weight(keys >= t) >= target: entries above t are kept, entries equal to t are kept in index
    order while the weight before them stays below target.

    Args:
      keys: uint32 [B, V] (see `_order_keys`); weights: float32 [B, V] >= 0;
      target: scalar or [B, 1], > 0 and <= the row's total weight.

    Returns:
      bool [B, V].
    """

    def weight_at_or_above(threshold):
        return jnp.sum(jnp.where(keys >= threshold[:, None], weights, 0.0), axis=-1)

    def bisect(_, bounds):
        low, high = bounds  # weight(keys >= low) >= target > weight(keys >= high)
        middle = low + (high - low) // 2
        ok = weight_at_or_above(middle) >= jnp.reshape(target, (-1,))
        return jnp.where(ok, middle, low), jnp.where(ok, high, middle)

    low, high = jnp.min(keys, axis=-1), jnp.max(keys, axis=-1) + 1
    threshold, _ = jax.lax.fori_loop(0, 32, bisect, (low, high))
    threshold = threshold[:, None]
    above = keys > threshold
    tied = keys == threshold
    weight_above = jnp.sum(jnp.where(above, weights, 0.0), axis=-1, keepdims=True)
    tied_weights = jnp.where(tied, weights, 0.0)
    tied_before = jnp.cumsum(tied_weights, axis=-1) - tied_weights
    return above | (tied & (weight_above + tied_before < target))


def filter_logits(
    logits: Array,
    temperature: Array,
    top_k: Array,
    top_p: Array,
    *,
    use_top_k: bool = True,
    use_top_p: bool = True,
) -> Array:
    """Tempered logits [B, V] with every token outside the top-k / top-p set at -inf.

    Args:
      logits: float32 [B, V].
      temperature: scalar > 0; logits are divided by it first.
      top_k: scalar int; keep the k highest-ranked tokens (0 keeps all).
      top_p: scalar in (0, 1]; of the tokens top-k kept, keep the smallest prefix (by rank) whose
        probability (renormalised after top-k) sums to at least top_p. The top token is always
        kept; top_p == 1 keeps every token top-k kept.
      use_top_k, use_top_p: static; False skips that filter's work (as if top_k=0 / top_p=1).

    Ranking is by descending logit, ties by lower token id. No sort: see `_keep_top_weight`.
    """
    scaled = logits.astype(jnp.float32) / temperature
    vocab = scaled.shape[-1]
    if use_top_k:
        count = jnp.where(top_k <= 0, vocab, jnp.minimum(top_k, vocab)).astype(jnp.float32)
        keep = _keep_top_weight(_order_keys(scaled), jnp.ones_like(scaled), count)
        scaled = jnp.where(keep, scaled, -jnp.inf)
    if use_top_p:
        probs = jax.nn.softmax(scaled, axis=-1)
        keep = _keep_top_weight(_order_keys(scaled), probs, top_p) | (top_p >= 1.0)
        scaled = jnp.where(keep, scaled, -jnp.inf)
    return scaled


def sampling_distribution(logits: Array, temperature, top_k, top_p) -> Array:
    """Probabilities [B, V] that `sample_tokens` draws from (temperature > 0)."""
    return jax.nn.softmax(filter_logits(logits, temperature, top_k, top_p), axis=-1)


def token_logprobs(logits: Array, tokens: Array) -> Array:
    """log softmax(logits)[b, tokens[b]]: logits [B, V], tokens [B] -> float32 [B]."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, tokens[:, None], axis=-1)[:, 0]


def row_keys(rng: Array, step: Array, row_ids: Array) -> Array:
    """Keys [B] for one step: fold_in(fold_in(rng, step), row_id) for every row.

    Keyed by the global row id (not the batch position or size), so a row's samples do not depend
    on how many other rows run beside it, how the batch is padded or how it is sharded.
    """
    step_key = jax.random.fold_in(rng, step)
    return jax.vmap(lambda row: jax.random.fold_in(step_key, row))(row_ids)


def sample_tokens(
    logits: Array,
    keys: Array,
    temperature,
    top_k,
    top_p,
    *,
    greedy: bool,
    use_top_k: bool = True,
    use_top_p: bool = True,
) -> SampledTokens:
    """Draws one token per row.

    Args:
      logits: float32 [B, V] untempered model logits.
      keys: [B] PRNG keys (see `row_keys`).
      greedy: static; take the argmax (temperature 0) and ignore the other settings.
      use_top_k, use_top_p: static; False skips that filter (see `filter_logits`).
    """
    logits = logits.astype(jnp.float32)
    if greedy:
        tokens = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return SampledTokens(tokens, token_logprobs(logits, tokens), jnp.zeros(tokens.shape))
    sampling_logits = filter_logits(
        logits, temperature, top_k, top_p, use_top_k=use_top_k, use_top_p=use_top_p
    )
    tokens = jax.vmap(jax.random.categorical)(keys, sampling_logits).astype(jnp.int32)
    return SampledTokens(
        tokens, token_logprobs(logits, tokens), token_logprobs(sampling_logits, tokens)
    )
