"""The static sampler: one jitted prefill and one jitted decode loop (`lax.while_loop`) over a
fixed batch. `engine.build_engine` (continuous batching) is the default; this is the reference
it is tested against and the baseline of its benchmarks (`generate(..., engine="static")`).

Shapes: R prompt rows, n samples per prompt, N = R * n decode rows, P bucketed prompt length,
M max_new_tokens, S = P + M cache slots, V vocabulary, L layers, K kv heads, Dh head dim.

Prefill runs the R prompts once, writing slots [0, P) of the cache, and takes the logits at
each prompt's last real token. The cache and those logits are then repeated n times along the
batch (row r * n + s is sample s of prompt r), so the n samples of a prompt share one prefill.
Decode step i writes slot P + i - 1 with position `prompt_length + i - 1` and segment id 1 for
every row; prompt padding carries segment id 0 and is never attended to. The loop ends after M
tokens or as soon as every row has produced a stop token or reached its budget.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from reasonrl.models import api
from reasonrl.models.config import ModelConfig
from reasonrl.models.layers import ActivationSharding
from reasonrl.models.transformer import KVCache
from reasonrl.parallel.mesh import jit_on_mesh
from reasonrl.parallel.rules import Rules
from reasonrl.sampling.filters import row_keys, sample_tokens

Array = jax.Array

_CACHE_AXES = ("layers", "batch", "kv_heads", "length", "head_dim")


class SamplerSettings(NamedTuple):
    """Traced sampling knobs (changing them never recompiles).

    temperature, top_p: float32 scalars; top_k: int32 scalar; pad_id: int32 scalar;
    stop_mask: bool [V], True for stop tokens.
    """

    temperature: Array
    top_k: Array
    top_p: Array
    pad_id: Array
    stop_mask: Array


class DecodeOutput(NamedTuple):
    """tokens int32 [N, M] (pad_id after a row ends); logprobs, sampling_logprobs float32 [N, M]
    (0 after a row ends); lengths int32 [N]; stopped bool [N]; steps int32 scalar: token
    positions generated before the loop ended (M unless every row stopped early)."""

    tokens: Array
    logprobs: Array
    sampling_logprobs: Array
    lengths: Array
    stopped: Array
    steps: Array


class Sampler(NamedTuple):
    """prefill(params, tokens [R, P], lengths [R]) -> (cache with N rows, logits [N, V]);
    decode(params, cache, logits, prompt_lengths [N], row_ids [N], budgets [N], live_rows, rng,
      settings) -> (DecodeOutput, final cache); budgets int32 [N] (1..M) is each row's max new
      tokens; rows with row_id >= live_rows are batch padding: they count as finished from the
      start, so they never hold the loop open.
    `decode` donates the cache: the loop then updates that buffer in place (returning it lets XLA
    alias input and output) instead of copying it into the loop state first."""

    prefill: callable
    decode: callable


def _constrain_cache(sharding: ActivationSharding | None, cache: KVCache) -> KVCache:
    if sharding is None:
        return cache
    return KVCache(
        sharding.constrain(cache.keys, _CACHE_AXES),
        sharding.constrain(cache.values, _CACHE_AXES),
        sharding.constrain(cache.positions, ("batch", "length")),
        sharding.constrain(cache.segment_ids, ("batch", "length")),
    )


def _next_logits(config, params, sharding, hidden: Array) -> Array:
    """hidden [B, 1, D] -> float32 logits [B, V]."""
    return api.logits_from_hidden(config, params, hidden, sharding=sharding)[:, 0, :]


@functools.lru_cache(maxsize=64)
def build_sampler(
    config: ModelConfig,
    mesh: Mesh | None,
    rules: Rules,
    prompt_rows: int,
    prompt_bucket: int,
    max_new_tokens: int,
    num_samples: int,
    greedy: bool,
    use_top_k: bool,
    use_top_p: bool,
) -> Sampler:
    """The jitted prefill and decode for one static shape / mode (cached per arguments).

    `mesh`: the params' mesh, any axis types; both run on its Auto view (`parallel.jit_on_mesh`).
    """
    sharding = None if mesh is None else ActivationSharding(mesh, rules)

    def prefill(params, tokens, lengths):
        slots = jnp.arange(prompt_bucket, dtype=jnp.int32)
        positions = jnp.broadcast_to(slots, tokens.shape)
        segments = (slots[None, :] < lengths[:, None]).astype(jnp.int32)
        cache = _constrain_cache(sharding, KVCache.empty(config, prompt_rows, prompt_bucket))
        hidden, cache = api.hidden_states(
            config,
            params,
            tokens,
            positions,
            segments,
            sharding=sharding,
            cache=cache,
            cache_index=jnp.int32(0),
        )
        last = jnp.take_along_axis(hidden, (lengths - 1)[:, None, None], axis=1)  # [R, 1, D]
        logits = _next_logits(config, params, sharding, last)

        def widen(x, batch_axis, slot_axis):
            """Room for the new tokens, and one copy of each prompt row per sample."""
            pad = [(0, 0)] * x.ndim
            pad[slot_axis] = (0, max_new_tokens)
            return jnp.repeat(jnp.pad(x, pad), num_samples, axis=batch_axis)

        cache = KVCache(
            widen(cache.keys, 1, 3),
            widen(cache.values, 1, 3),
            widen(cache.positions, 0, 1),
            widen(cache.segment_ids, 0, 1),
        )
        return _constrain_cache(sharding, cache), jnp.repeat(logits, num_samples, axis=0)

    def decode(params, cache, logits, prompt_lengths, row_ids, budgets, live_rows, rng, settings):
        rows = logits.shape[0]
        padding = row_ids >= live_rows

        def sample(step, step_logits, done):
            keys = row_keys(rng, step, row_ids)
            drawn = sample_tokens(
                step_logits,
                keys,
                settings.temperature,
                settings.top_k,
                settings.top_p,
                greedy=greedy,
                use_top_k=use_top_k,
                use_top_p=use_top_p,
            )
            stops = settings.stop_mask[drawn.tokens] & ~done
            return drawn, stops

        def record(out: DecodeOutput, step, drawn, done, stops) -> DecodeOutput:
            def put(buffer, values, fill):
                return buffer.at[:, step].set(jnp.where(done, fill, values).astype(buffer.dtype))

            return DecodeOutput(
                put(out.tokens, drawn.tokens, settings.pad_id),
                put(out.logprobs, drawn.logprobs, 0.0),
                put(out.sampling_logprobs, drawn.sampling_logprobs, 0.0),
                out.lengths + (~done).astype(jnp.int32),
                out.stopped | stops,
                step + 1,
            )

        empty = DecodeOutput(
            jnp.zeros((rows, max_new_tokens), jnp.int32),
            jnp.zeros((rows, max_new_tokens), jnp.float32),
            jnp.zeros((rows, max_new_tokens), jnp.float32),
            jnp.zeros((rows,), jnp.int32),
            jnp.zeros((rows,), bool),
            jnp.int32(0),
        )
        drawn, stops = sample(jnp.int32(0), logits, padding)
        out = record(empty, jnp.int32(0), drawn, padding, stops)

        def finished(out: DecodeOutput) -> Array:
            return out.stopped | padding | (out.lengths >= budgets)

        def keep_going(state):
            out, _, _ = state
            return (out.steps < max_new_tokens) & ~jnp.all(finished(out))

        def step_once(state):
            out, previous, cache = state
            step = out.steps
            positions = (prompt_lengths + step - 1)[:, None]
            hidden, cache = api.hidden_states(
                config,
                params,
                previous[:, None],
                positions,
                jnp.ones_like(positions),
                sharding=sharding,
                cache=cache,
                cache_index=prompt_bucket + step - 1,
            )
            cache = _constrain_cache(sharding, cache)
            done = finished(out)
            drawn, stops = sample(step, _next_logits(config, params, sharding, hidden), done)
            # Rows that already finished keep computing (their outputs are masked in `record`).
            return record(out, step, drawn, done, stops), drawn.tokens, cache

        out, _, cache = jax.lax.while_loop(keep_going, step_once, (out, drawn.tokens, cache))
        return out, cache

    return Sampler(jit_on_mesh(prefill, mesh), jit_on_mesh(decode, mesh, donate_argnums=(1,)))
