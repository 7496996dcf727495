"""The decode engine: continuous batching over a fixed number of decode slots.

Shapes: R prompt rows, n samples per prompt, N = R * n rows (row = prompt * n + sample), P the
bucketed prompt length, M the longest budget (max_new_tokens), B decode slots, S cache slots per
decode slot (P + M rounded up to the attention block), V vocabulary, L layers, K kv heads,
Dh head dim.

One jitted call does the whole generation:

1. **Prefill** runs the R prompts once and keeps their keys/values [L, R, K, P, Dh] and the
   logits at each prompt's last token [R, V]; a prompt's n samples share them.
2. A `lax.while_loop` over decode iterations. Each iteration
   a. **admits** pending rows (in row order) into free slots: the slot's cache region [0, P)
      receives its prompt's keys/values (`lengths` = the prompt's length, so the prompt's
      padding is never read) and the row's first token is drawn from its prompt's logits;
   b. runs **one decode step for all slots** (`api.decode_slots`: each row attends to its
      filled slots only, so a step costs what the filled prefix costs), drawing each active
      row's next token;
   c. **frees** the slots of rows that produced a stop token or reached their budget.
   The loop ends when no row is pending and no slot is busy.

The cache is B x S slots allocated once (B is usually much smaller than N), never N x (P + M):
a row occupies a slot only while it generates, and the slot goes to the next pending row as
soon as it finishes, so the batch stays full while rows remain.

Row r's token i is drawn with key fold_in(fold_in(rng, i), r) from logits that depend only on
its prompt and its own tokens; which slot it ran in, which rows ran beside it and when it was
admitted change nothing but float rounding, so its tokens and logprobs are those of the static
sampler (`decode.build_sampler`), which tests check.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from reasonrl.models import api
from reasonrl.models.config import ModelConfig
from reasonrl.models.layers import SLOT_BLOCK, ActivationSharding, constrain
from reasonrl.models.transformer import KVCache, SlotCache
from reasonrl.parallel.mesh import auto_mesh, jit_on_mesh
from reasonrl.parallel.rules import Rules, batch_split_count, logical_to_spec
from reasonrl.sampling.decode import DecodeOutput
from reasonrl.sampling.filters import sample_tokens

Array = jax.Array

_CACHE_AXES = ("layers", "batch", "kv_heads", "length", "head_dim")


def cache_slots(prompt_bucket: int, max_new_tokens: int) -> int:
    """S: cache slots per decode slot, P + M rounded up to a whole number of blocks."""
    return -(-(prompt_bucket + max_new_tokens) // SLOT_BLOCK) * SLOT_BLOCK


def cache_bytes(
    config: ModelConfig, decode_slots: int, slots: int, prompt_rows: int, prompt_bucket: int
) -> int:
    """Bytes of keys and values the engine allocates: the slot cache and the prompts' cache."""
    per_token = 2 * config.num_layers * config.num_kv_heads * config.head_dim
    itemsize = jnp.dtype(config.compute_dtype).itemsize
    return per_token * itemsize * (decode_slots * slots + prompt_rows * prompt_bucket)


class EngineState(NamedTuple):
    """The loop state.

    cache: the decode slots' SlotCache (keys/values [L, B, K, S, Dh], lengths [B]).
    slot_rows: int32 [B] row each slot serves; N when the slot is free.
    slot_steps: int32 [B] tokens the slot's row has generated.
    previous: int32 [B] the slot's newest token (the next step's input).
    next_row: int32 [D] per batch shard, the first of its rows not admitted yet (shard-local).
    out: DecodeOutput over the N rows; `steps` is 1 + the decode iterations (model steps) run,
      counted as the static sampler counts its steps (the first draw, then one per model step).
    """

    cache: SlotCache
    slot_rows: Array
    slot_steps: Array
    previous: Array
    next_row: Array
    out: DecodeOutput


def _prompt_copier(config, mesh, rules, prompt_rows, prompt_bucket, decode_slots):
    """`copy(keys, values, prompt_keys, prompt_values, prompt_logits, admitted, local_prompt)
    -> (keys, values, logits [B, V])`: each admitted slot receives its prompt's cache slots
    [0, P), and every slot its prompt's next-token logits.

    Slots and prompts are split over the same batch shards and a slot only takes rows of its own
    shard, so under a mesh the copy runs shard by shard in a `shard_map` (`local_prompt` is the
    shard-local prompt row): no device ever receives another's prompt cache. Plain jit would
    all-gather the prompts' cache at every admission (the dynamic prompt index).
    """

    def copy(keys, values, prompt_keys, prompt_values, prompt_logits, admitted, local_prompt):
        slots = admitted.shape[0]
        sources = (prompt_keys, prompt_values)
        count = jnp.sum(admitted, dtype=jnp.int32)

        def one_by_one(kv):  # few admissions (the steady state): touch only their slots
            order = jnp.nonzero(admitted, size=slots, fill_value=0)[0]
            size = (keys.shape[0], 1, keys.shape[2], prompt_bucket, keys.shape[4])

            def copy_one(i, kv):
                slot = order[i]
                start, target = (0, local_prompt[slot], 0, 0, 0), (0, slot, 0, 0, 0)
                return tuple(
                    jax.lax.dynamic_update_slice(
                        buf, jax.lax.dynamic_slice(src, start, size), target
                    )
                    for buf, src in zip(kv, sources)
                )

            return jax.lax.fori_loop(0, count, copy_one, kv)

        def all_at_once(kv):  # many admissions (e.g. the first): rewrite every slot's [0, P)
            keep = admitted[None, :, None, None, None]
            return tuple(
                jax.lax.dynamic_update_slice_in_dim(
                    buf,
                    jnp.where(keep, src[:, local_prompt], buf[:, :, :, :prompt_bucket]),
                    0,
                    axis=3,
                )
                for buf, src in zip(kv, sources)
            )

        keys, values = jax.lax.cond(4 * count > slots, all_at_once, one_by_one, (keys, values))
        return keys, values, prompt_logits[local_prompt]

    if mesh is None:
        return copy
    mesh = auto_mesh(mesh)
    shape = (config.num_layers, decode_slots, config.num_kv_heads, 1, config.head_dim)
    cache = logical_to_spec(_CACHE_AXES, shape, mesh, rules)
    prompts = logical_to_spec(_CACHE_AXES, (*shape[:1], prompt_rows, *shape[2:]), mesh, rules)
    logits = logical_to_spec(("batch", "vocab"), (prompt_rows, config.vocab_size), mesh, rules)
    slots = logical_to_spec(("batch",), (decode_slots,), mesh, rules)
    if not cache[1] == prompts[1] == logits[0] == slots[0]:
        raise ValueError(
            f"decode slots ({decode_slots}) and prompt rows ({prompt_rows}) must be split over "
            f"the same batch axes, got {cache[1]} and {prompts[1]}"
        )
    return jax.shard_map(
        copy,
        mesh=mesh,
        in_specs=(cache, cache, prompts, prompts, logits, slots, slots),
        out_specs=(cache, cache, logits),
    )


@functools.lru_cache(maxsize=64)
def build_engine(
    config: ModelConfig,
    mesh: Mesh | None,
    rules: Rules,
    prompt_rows: int,
    prompt_bucket: int,
    max_new_tokens: int,
    num_samples: int,
    decode_slots: int,
    greedy: bool,
    use_top_k: bool,
    use_top_p: bool,
):
    """The jitted engine for one static shape / mode (cached per arguments).

    Returns `run(params, tokens [R, P], prompt_lengths [R], budgets [N], live_rows, rng, settings)
    -> DecodeOutput`: budgets int32 [N] is each row's max new tokens (1..M); rows >= live_rows
    are batch padding and are never admitted.
    """
    sharding = None if mesh is None else ActivationSharding(mesh, rules)
    rows = prompt_rows * num_samples
    slots = cache_slots(prompt_bucket, max_new_tokens)

    shards = 1 if mesh is None else batch_split_count(mesh, rules)
    if prompt_rows % shards or decode_slots % shards:
        raise ValueError(
            f"{prompt_rows} prompt rows and {decode_slots} decode slots must both divide into "
            f"the {shards} batch shards"
        )
    shard_rows = rows // shards
    shard_offsets = jnp.arange(shards, dtype=jnp.int32) * shard_rows
    copy_prompts = _prompt_copier(config, mesh, rules, prompt_rows, prompt_bucket, decode_slots)

    def pin_cache(cache: SlotCache) -> SlotCache:
        return SlotCache(
            constrain(sharding, cache.keys, _CACHE_AXES),
            constrain(sharding, cache.values, _CACHE_AXES),
            constrain(sharding, cache.lengths, ("batch",)),
        )

    def draw(logits, steps, row_ids, rng, settings):
        """Tokens for B slots: row r's i-th token with key fold_in(fold_in(rng, i), r)."""
        keys = jax.vmap(lambda i, r: jax.random.fold_in(jax.random.fold_in(rng, i), r))(
            steps, row_ids
        )
        return sample_tokens(
            logits,
            keys,
            settings.temperature,
            settings.top_k,
            settings.top_p,
            greedy=greedy,
            use_top_k=use_top_k,
            use_top_p=use_top_p,
        )

    def record(state: EngineState, drawn, busy, budgets, settings) -> EngineState:
        """Writes the busy slots' new tokens into their rows; frees slots whose row ended."""
        out = state.out
        at_rows = jnp.where(busy, state.slot_rows, rows)  # row N is out of bounds: dropped
        at = (at_rows, state.slot_steps)
        stops = busy & settings.stop_mask[drawn.tokens]
        steps = state.slot_steps + busy.astype(jnp.int32)
        finished = busy & (stops | (steps >= budgets[jnp.minimum(state.slot_rows, rows - 1)]))
        out = DecodeOutput(
            out.tokens.at[at].set(drawn.tokens, mode="drop"),
            out.logprobs.at[at].set(drawn.logprobs, mode="drop"),
            out.sampling_logprobs.at[at].set(drawn.sampling_logprobs, mode="drop"),
            out.lengths.at[at_rows].set(steps, mode="drop"),
            out.stopped.at[at_rows].set(stops, mode="drop"),
            out.steps,
        )
        return state._replace(
            slot_rows=jnp.where(finished, rows, state.slot_rows),
            slot_steps=steps,
            previous=jnp.where(busy, drawn.tokens, state.previous),
            out=out,
        )

    def run(params, tokens, prompt_lengths, budgets, live_rows, rng, settings):
        # 1. Prefill: the prompts' keys/values and next-token logits.
        slot_ids = jnp.arange(prompt_bucket, dtype=jnp.int32)
        positions = jnp.broadcast_to(slot_ids, tokens.shape)
        segments = (slot_ids[None, :] < prompt_lengths[:, None]).astype(jnp.int32)
        hidden, prompt_cache = api.hidden_states(
            config,
            params,
            tokens,
            positions,
            segments,
            sharding=sharding,
            cache=KVCache.empty(config, prompt_rows, prompt_bucket),
            cache_index=jnp.int32(0),
        )
        last = jnp.take_along_axis(hidden, (prompt_lengths - 1)[:, None, None], axis=1)  # [R,1,D]
        prompt_logits = api.logits_from_hidden(config, params, last, sharding=sharding)[:, 0]

        def pending_rows(state: EngineState) -> Array:
            """int32 [D]: rows each batch shard has not admitted yet."""
            return jnp.clip(live_rows - shard_offsets, 0, shard_rows) - state.next_row

        def admit(state: EngineState) -> EngineState:
            """Fills free slots with their shard's next pending rows; draws their first tokens."""
            free = (state.slot_rows == rows).reshape(shards, -1)  # [D, B / D]
            local = state.next_row[:, None] + jnp.cumsum(free, axis=1) - 1  # shard-local rows
            admitted = free & (local < (state.next_row + pending_rows(state))[:, None])
            count = jnp.sum(admitted, axis=1, dtype=jnp.int32)  # [D]
            candidates = (local + shard_offsets[:, None]).reshape(-1)
            admitted = admitted.reshape(-1)
            slot_rows = jnp.where(admitted, candidates, state.slot_rows)
            prompts = jnp.minimum(slot_rows, rows - 1) // num_samples  # [B] global prompt rows
            keys, values, logits = copy_prompts(
                state.cache.keys,
                state.cache.values,
                prompt_cache.keys,
                prompt_cache.values,
                prompt_logits,
                admitted,
                prompts % (prompt_rows // shards),  # the shard-local prompt row
            )
            lengths = jnp.where(admitted, prompt_lengths[prompts], state.cache.lengths)
            state = state._replace(
                cache=pin_cache(SlotCache(keys, values, lengths)),
                slot_rows=slot_rows,
                slot_steps=jnp.where(admitted, 0, state.slot_steps),
                next_row=state.next_row + count,
            )
            drawn = draw(logits, state.slot_steps, slot_rows, rng, settings)
            return record(state, drawn, admitted, budgets, settings)

        def maybe_admit(state: EngineState) -> EngineState:
            pending = jnp.any(pending_rows(state) > 0)
            has_free = jnp.any(state.slot_rows == rows)
            return jax.lax.cond(pending & has_free, admit, lambda s: s, state)

        def decode_step(state: EngineState) -> EngineState:
            """One model step for every slot; the busy slots' rows get their next token."""
            busy = state.slot_rows < rows
            hidden, cache = api.decode_slots(
                config, params, state.previous, state.cache, sharding=sharding
            )
            logits = api.logits_from_hidden(config, params, hidden, sharding=sharding)[:, 0]
            drawn = draw(logits, state.slot_steps, state.slot_rows, rng, settings)
            state = record(state._replace(cache=cache), drawn, busy, budgets, settings)
            # Free slots (idle, or their row just ended) hold nothing: length 0, so they never
            # widen the attention's block loop, which runs to the longest filled row.
            busy = state.slot_rows < rows
            cache = pin_cache(cache._replace(lengths=jnp.where(busy, cache.lengths, 0)))
            out = state.out._replace(steps=state.out.steps + 1)
            return state._replace(cache=cache, out=out)

        def step(state: EngineState) -> EngineState:
            state = maybe_admit(state)
            # Skipped when every admitted row ended at its first token (e.g. budgets of 1).
            return jax.lax.cond(jnp.any(state.slot_rows < rows), decode_step, lambda s: s, state)

        def keep_going(state: EngineState) -> Array:
            return jnp.any(pending_rows(state) > 0) | jnp.any(state.slot_rows < rows)

        empty = DecodeOutput(
            jnp.full((rows, max_new_tokens), settings.pad_id, jnp.int32),
            jnp.zeros((rows, max_new_tokens), jnp.float32),
            jnp.zeros((rows, max_new_tokens), jnp.float32),
            jnp.zeros((rows,), jnp.int32),
            jnp.zeros((rows,), bool),
            jnp.int32(1),  # the draw from the prompts' logits, as the static sampler counts it
        )
        free_slots = jnp.full((decode_slots,), rows, jnp.int32)
        state = EngineState(
            cache=pin_cache(SlotCache.empty(config, decode_slots, slots)),
            slot_rows=constrain(sharding, free_slots, ("batch",)),
            slot_steps=jnp.zeros_like(free_slots),
            previous=jnp.zeros_like(free_slots),
            next_row=jnp.zeros((shards,), jnp.int32),
            out=empty,
        )
        return jax.lax.while_loop(keep_going, step, state).out

    return jit_on_mesh(run, mesh)
