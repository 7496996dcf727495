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
from reasonrl.parallel.rules import DEFAULT_RULES, Rules, batch_sharding, batch_split_count
from reasonrl.sampling.decode import SamplerSettings, build_sampler
from reasonrl.sampling.prompt_block import check_settings, check_stop_tokens, pack_prompts


class GenerationResult(NamedTuple):
    """Completions for N = num_prompts * num_samples rows (row = prompt * num_samples + sample).

    tokens: int32 [N, max_new_tokens]; `pad_id` after each row's end.
    logprobs: float32 [N, max_new_tokens] log p(token) under the untempered model; 0 after the end.
    sampling_logprobs: float32 [N, max_new_tokens] log p(token) under the tempered, top-k/top-p
      filtered distribution it was drawn from; 0 for greedy and after the end.
    lengths: int32 [N] generated tokens per row, including a final stop token.
    finish_reasons: str [N], "stop" (a stop token was generated) or "length".
    decode_steps: token positions the loop generated before it ended (< max_new_tokens only
      when every row stopped early).
    """

    tokens: np.ndarray
    logprobs: np.ndarray
    sampling_logprobs: np.ndarray
    lengths: np.ndarray
    finish_reasons: np.ndarray
    decode_steps: int


class TextGenerationResult(NamedTuple):
    """texts: N decoded completions (a final stop token is not rendered); result: the arrays."""

    texts: list[str]
    result: GenerationResult


def _as_key(rng) -> jax.Array:
    if isinstance(rng, (int, np.integer)):
        return jax.random.key(int(rng))
    return rng


def generate(
    config: ModelConfig,
    params,
    prompt_tokens,
    *,
    max_new_tokens: int,
    rng,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    num_samples: int = 1,
    stop_tokens: Sequence[int] = (),
    pad_id: int = 0,
    prompt_lengths=None,
    rules: Rules = DEFAULT_RULES,
) -> GenerationResult:
    """Samples `max_new_tokens` (or until a stop token) after each prompt.

    Args:
      prompt_tokens: list of variable-length int sequences, or an int array [B, L] right-padded
        with `prompt_lengths` [B] giving each row's real length (without them, all rows are L).
      max_new_tokens: tokens to generate per row (the decode loop's length).
      rng: a PRNG key (or an int seed). The token at step i of row r is drawn with key
        fold_in(fold_in(rng, i), r), so rows do not depend on each other or on sharding, and
        num_samples=n gives exactly the samples of n explicit copies of each prompt.
      temperature: 0 = greedy (argmax); otherwise logits are divided by it.
      top_p, top_k: nucleus and top-k filtering (top_k=0, top_p=1: off), applied after temperature.
      num_samples: samples per prompt; they share one prefill.
      stop_tokens: ids that end a row (kept in its tokens and length).
      pad_id: written after each row's end.
      rules: the sharding rules the params were placed with.

    Raises:
      ValueError: naming the offending argument (empty prompt, token outside the vocabulary,
        prompt + max_new_tokens beyond max_position_embeddings, max_new_tokens <= 0, top_p outside
        (0, 1], temperature < 0, top_k < 0, num_samples < 1, stop token outside the vocabulary).
    """
    check_settings(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        num_samples=num_samples,
    )
    stop = check_stop_tokens(config, stop_tokens)
    mesh = api.mesh_of(params)
    splits = 1 if mesh is None else batch_split_count(mesh, rules)
    block = pack_prompts(
        config,
        prompt_tokens,
        prompt_lengths,
        max_new_tokens=max_new_tokens,
        pad_id=pad_id,
        row_multiple=splits,
    )
    num_prompts = len(prompt_tokens) if prompt_lengths is None else int(np.shape(prompt_tokens)[0])
    greedy = temperature == 0
    sampler = build_sampler(
        config,
        mesh,
        rules,
        block.tokens.shape[0],
        block.tokens.shape[1],
        int(max_new_tokens),
        int(num_samples),
        greedy,
        not greedy and top_k > 0,
        not greedy and top_p < 1.0,
    )

    rows = block.tokens.shape[0] * num_samples
    row_prompt_lengths = np.repeat(block.lengths, num_samples)
    row_ids = np.arange(rows, dtype=np.int32)
    prompt_inputs = (block.tokens, block.lengths)
    row_inputs = (row_prompt_lengths, row_ids)
    if mesh is not None:
        rows_sharding = batch_sharding(mesh, rules)
        prompt_inputs = jax.device_put(prompt_inputs, rows_sharding)
        row_inputs = jax.device_put(row_inputs, rows_sharding)
    stop_mask = np.zeros((config.vocab_size,), bool)
    stop_mask[list(stop)] = True
    settings = SamplerSettings(
        temperature=jnp.float32(temperature if not greedy else 1.0),
        top_k=jnp.int32(top_k),
        top_p=jnp.float32(top_p),
        pad_id=jnp.int32(pad_id),
        stop_mask=jnp.asarray(stop_mask),
    )

    cache, logits = sampler.prefill(params, *prompt_inputs)
    keep = num_prompts * num_samples
    out, _ = sampler.decode(
        params, cache, logits, *row_inputs, jnp.int32(keep), _as_key(rng), settings
    )
    out = jax.device_get(out)
    return GenerationResult(
        tokens=np.asarray(out.tokens[:keep]),
        logprobs=np.asarray(out.logprobs[:keep]),
        sampling_logprobs=np.asarray(out.sampling_logprobs[:keep]),
        lengths=np.asarray(out.lengths[:keep]),
        finish_reasons=np.where(out.stopped[:keep], "stop", "length"),
        decode_steps=int(out.steps),
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
