"""Public entry points: `generate` (token ids) and `generate_text` (strings via a Tokenizer).

    result = generate(config, params, [[1, 2, 3], [4, 5]], max_new_tokens=64,
                      rng=jax.random.key(0), temperature=0.7, top_p=0.9, num_samples=8)
    result.tokens[3]          # sample 3 of prompt 0; row = prompt_index * num_samples + sample

Runs on the mesh the params live on (`models.mesh_of`), rows split over ("data", "fsdp"); any
mesh works (Auto or Explicit axes, set with `jax.set_mesh` or not, see `reasonrl.parallel.mesh`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from reasonrl.models import api
from reasonrl.models.config import ModelConfig
from reasonrl.parallel.distributed import fetch_global, put_global
from reasonrl.parallel.rules import DEFAULT_RULES, Rules, batch_sharding, batch_split_count
from reasonrl.sampling.decode import SamplerSettings, build_sampler
from reasonrl.sampling.engine import build_engine
from reasonrl.sampling.prompt_block import check_settings, check_stop_tokens, pack_prompts


class GenerationResult(NamedTuple):
    """Completions for N = num_prompts * num_samples rows (row = prompt * num_samples + sample).

    tokens: int32 [N, M] (M = the longest budget); `pad_id` after each row's end.
    logprobs: float32 [N, M] log p(token) under the untempered model; 0 after the end.
    sampling_logprobs: float32 [N, M] log p(token) under the tempered, top-k/top-p
      filtered distribution it was drawn from; 0 for greedy and after the end.
    lengths: int32 [N] generated tokens per row, including a final stop token.
    finish_reasons: str [N], "stop" (a stop token was generated) or "length" (its budget).
    decode_steps: the loop's draws: one from the prompts' logits, then one per model decode
      step (static engine: token positions, < M only when every row ended early; continuous
      engine: until the queue drained). decode_steps - 1 model steps ran.
    decode_rows: rows each model decode step computed (the static batch or the decode slots):
      (decode_steps - 1) * decode_rows one-token forwards (FLOP accounting).
    """

    tokens: np.ndarray
    logprobs: np.ndarray
    sampling_logprobs: np.ndarray
    lengths: np.ndarray
    finish_reasons: np.ndarray
    decode_steps: int
    decode_rows: int = 0


class TextGenerationResult(NamedTuple):
    """texts: N decoded completions (a final stop token is not rendered); result: the arrays."""

    texts: list[str]
    result: GenerationResult


def _as_key(rng) -> jax.Array:
    if isinstance(rng, (int, np.integer)):
        return jax.random.key(int(rng))
    return rng


ENGINES = ("auto", "continuous", "static")
CPU_DECODE_SLOTS = 16  # XLA:CPU's step cost grows with the batch: few slots, kept full
ACCELERATOR_DECODE_SLOTS = 256  # accelerators' decode steps are bandwidth-bound: many slots


def default_decode_slots(rows: int, backend: str) -> int:
    """Decode slots for `rows` rows on `backend` when the caller does not choose."""
    cap = CPU_DECODE_SLOTS if backend == "cpu" else ACCELERATOR_DECODE_SLOTS
    return min(rows, cap)


def row_budgets(max_new_tokens, num_prompts: int) -> np.ndarray:
    """int32 [num_prompts]: max_new_tokens as one budget per prompt.

    Raises:
      ValueError: a budget that is not a positive integer, or a list of the wrong length.
    """
    budgets = np.asarray(max_new_tokens)
    if budgets.ndim == 0:
        budgets = np.full((num_prompts,), budgets)
    if budgets.shape != (num_prompts,):
        raise ValueError(
            f"max_new_tokens must be an int or one budget per prompt ({num_prompts}), "
            f"got shape {budgets.shape}"
        )
    if not np.issubdtype(budgets.dtype, np.integer) or (budgets <= 0).any():
        raise ValueError(f"max_new_tokens must be positive integers, got {max_new_tokens!r}")
    return budgets.astype(np.int32)


def generate(
    config: ModelConfig,
    params,
    prompt_tokens,
    *,
    max_new_tokens,
    rng,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    num_samples: int = 1,
    stop_tokens: Sequence[int] = (),
    pad_id: int = 0,
    prompt_lengths=None,
    rules: Rules = DEFAULT_RULES,
    engine: str = "auto",
    decode_slots: int | None = None,
    output_width: int | None = None,
) -> GenerationResult:
    """Samples up to `max_new_tokens` (or until a stop token) after each prompt.

    Args:
      prompt_tokens: list of variable-length int sequences, or an int array [B, L] right-padded
        with `prompt_lengths` [B] giving each row's real length (without them, all rows are L).
      max_new_tokens: tokens to generate per row: an int, or one budget per prompt (its samples
        share it). Outputs are [N, max(max_new_tokens)].
      rng: a PRNG key (or an int seed). The token at step i of row r is drawn with key
        fold_in(fold_in(rng, i), r), so rows do not depend on each other, on sharding or on the
        engine, and num_samples=n gives exactly the samples of n explicit copies of each prompt.
      temperature: 0 = greedy (argmax); otherwise logits are divided by it.
      top_p, top_k: nucleus and top-k filtering (top_k=0, top_p=1: off), applied after temperature.
      num_samples: samples per prompt; they share one prefill.
      stop_tokens: ids that end a row (kept in its tokens and length).
      pad_id: written after each row's end.
      rules: the sharding rules the params were placed with.
      engine: "continuous" (`sampling.engine`: decode slots refilled as rows finish, attention
        over filled cache blocks only), "static" (`sampling.decode`: one batch until its last row
        ends, attention over the whole cache) or "auto" (= "continuous").
      decode_slots: rows decoded at once by the continuous engine (rounded up to a multiple of
        the batch shards); default `default_decode_slots` (16 on CPU, 256 on accelerators,
        never more than the rows).
      output_width: M, the width of the outputs and of the caches' generation slots (default
        and minimum: the longest budget). Fixing it keeps one compiled program across calls
        whose longest budget varies (and lets benchmarks time part of a longer generation).

    Raises:
      ValueError: naming the offending argument (empty prompt, token outside the vocabulary,
        prompt + max_new_tokens beyond max_position_embeddings, max_new_tokens <= 0, top_p outside
        (0, 1], temperature < 0, top_k < 0, num_samples < 1, stop token outside the vocabulary,
        unknown engine, decode_slots < 1, output_width below the longest budget).
    """
    num_prompts = len(prompt_tokens) if prompt_lengths is None else int(np.shape(prompt_tokens)[0])
    budgets = row_budgets(max_new_tokens, num_prompts)
    longest = int(budgets.max()) if budgets.size else 1
    if output_width is not None:
        if int(output_width) != output_width or output_width < longest:
            raise ValueError(
                f"output_width must be an integer >= the longest budget {longest}, "
                f"got {output_width!r}"
            )
        longest = int(output_width)
    check_settings(
        max_new_tokens=longest,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        num_samples=num_samples,
    )
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if decode_slots is not None and (int(decode_slots) != decode_slots or decode_slots < 1):
        raise ValueError(f"decode_slots must be a positive integer, got {decode_slots!r}")
    stop = check_stop_tokens(config, stop_tokens)
    mesh = api.mesh_of(params)
    splits = 1 if mesh is None else batch_split_count(mesh, rules)
    block = pack_prompts(
        config,
        prompt_tokens,
        prompt_lengths,
        max_new_tokens=budgets,
        pad_id=pad_id,
        row_multiple=splits,
    )
    prompt_rows, prompt_bucket = block.tokens.shape
    rows = prompt_rows * num_samples
    greedy = temperature == 0
    modes = (greedy, not greedy and top_k > 0, not greedy and top_p < 1.0)
    row_budget = np.ones((rows,), np.int32)  # batch-padding prompts get budget 1
    row_budget[: num_prompts * num_samples] = np.repeat(budgets, num_samples)
    keep = num_prompts * num_samples
    stop_mask = np.zeros((config.vocab_size,), bool)
    stop_mask[list(stop)] = True
    settings = SamplerSettings(
        temperature=jnp.float32(temperature if not greedy else 1.0),
        top_k=jnp.int32(top_k),
        top_p=jnp.float32(top_p),
        pad_id=jnp.int32(pad_id),
        stop_mask=jnp.asarray(stop_mask),
    )
    rows_sharding = None if mesh is None else batch_sharding(mesh, rules)

    def place(tree):
        return tree if rows_sharding is None else put_global(tree, rows_sharding)

    if engine == "static":
        sampler = build_sampler(
            config, mesh, rules, prompt_rows, prompt_bucket, longest, int(num_samples), *modes
        )
        row_ids = np.arange(rows, dtype=np.int32)
        row_inputs = place((np.repeat(block.lengths, num_samples), row_ids, row_budget))
        cache, logits = sampler.prefill(params, *place((block.tokens, block.lengths)))
        out, _ = sampler.decode(
            params, cache, logits, *row_inputs, jnp.int32(keep), _as_key(rng), settings
        )
        rows_per_step = rows
    else:
        slots = decode_slots or default_decode_slots(rows, jax.default_backend())
        slots = -(-int(slots) // splits) * splits
        run = build_engine(
            config,
            mesh,
            rules,
            prompt_rows,
            prompt_bucket,
            longest,
            int(num_samples),
            slots,
            *modes,
        )
        prompt_inputs = place((block.tokens, block.lengths))
        out = run(params, *prompt_inputs, row_budget, jnp.int32(keep), _as_key(rng), settings)
        rows_per_step = slots
    out = fetch_global(out)
    return GenerationResult(
        tokens=np.asarray(out.tokens[:keep]),
        logprobs=np.asarray(out.logprobs[:keep]),
        sampling_logprobs=np.asarray(out.sampling_logprobs[:keep]),
        lengths=np.asarray(out.lengths[:keep]),
        finish_reasons=np.where(out.stopped[:keep], "stop", "length"),
        decode_steps=int(out.steps),
        decode_rows=rows_per_step,
    )


def generate_text(
    config: ModelConfig,
    params,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    rng,
    stop_tokens: Sequence[int] | None = None,
    add_bos: bool = False,
    **sampling,
) -> TextGenerationResult:
    """`generate` on strings, with a `reasonrl.data.Tokenizer`.

    Args:
      prompts: prompt texts, encoded with `tokenizer.encode(text, add_bos=add_bos)`.
      stop_tokens: default: the tokenizer's eos id, if it has one.
      **sampling: any other `generate` keyword (temperature, top_p, top_k, num_samples, ...).

    Returns:
      The decoded completion of each row (row = prompt * num_samples + sample) and the arrays.
    """
    if stop_tokens is None:
        stop_tokens = () if tokenizer.eos_id is None else (tokenizer.eos_id,)
    encoded = [tokenizer.encode(text, add_bos=add_bos) for text in prompts]
    result = generate(
        config,
        params,
        encoded,
        max_new_tokens=max_new_tokens,
        rng=rng,
        stop_tokens=stop_tokens,
        **sampling,
    )
    texts = decode_texts(tokenizer, result.tokens, result.lengths, result.finish_reasons)
    return TextGenerationResult(texts, result)


def decode_texts(
    tokenizer, tokens: np.ndarray, lengths: np.ndarray, finish_reasons: np.ndarray
) -> list[str]:
    """Each row's text: tokens [N, M] up to its length, minus a final stop token."""
    texts = []
    for row, length, reason in zip(tokens, lengths, finish_reasons):
        end = int(length) - (1 if reason == "stop" else 0)
        texts.append(tokenizer.decode([int(token) for token in row[:end]]))
    return texts
