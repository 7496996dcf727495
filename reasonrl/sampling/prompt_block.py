"""Host-side argument checks and prompt packing: ragged prompts -> a right-padded, bucketed block.

Prompt lengths are rounded up to a bucket (`bucket_length`) so that a new prompt length reuses
the compiled sampler of its bucket instead of recompiling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from reasonrl.models.config import ModelConfig

MIN_BUCKET = 16
POWER_OF_TWO_LIMIT = 512


def bucket_length(length: int) -> int:
    """The padded prompt length used for prompts of `length` tokens.

    Powers of two from 16 up to 512, then multiples of 512 (so long prompts waste < 512 slots).
    """
    if length <= MIN_BUCKET:
        return MIN_BUCKET
    if length <= POWER_OF_TWO_LIMIT:
        return 1 << math.ceil(math.log2(length))
    return -(-length // POWER_OF_TWO_LIMIT) * POWER_OF_TWO_LIMIT


class PromptBlock(NamedTuple):
    """Prompts right-padded into one block.

    tokens: int32 [B, P] (P = bucket_length of the longest prompt); entries past a row's length
      are `pad_id` and are never attended to.
    lengths: int32 [B] true prompt lengths (>= 1).
    """

    tokens: np.ndarray
    lengths: np.ndarray


def check_settings(
    *, max_new_tokens: int, temperature: float, top_p: float, top_k: int, num_samples: int
) -> None:
    """Raises ValueError naming the first out-of-range sampling argument."""
    if int(max_new_tokens) != max_new_tokens or max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if int(top_k) != top_k or top_k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 = no top-k), got {top_k!r}")
    if int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")


def check_stop_tokens(config: ModelConfig, stop_tokens: Sequence[int]) -> tuple[int, ...]:
    stop = tuple(int(t) for t in stop_tokens)
    bad = [t for t in stop if not 0 <= t < config.vocab_size]
    if bad:
        raise ValueError(f"stop_tokens {bad} are outside the vocabulary [0, {config.vocab_size})")
    return stop


def _ragged_rows(prompt_tokens, prompt_lengths) -> list[np.ndarray]:
    """The prompts as a list of 1-D arrays of their true tokens."""
    if prompt_lengths is None:  # ragged sequences, or an unpadded [B, L] array
        return [np.asarray(row).reshape(-1) for row in prompt_tokens]
    block = np.asarray(prompt_tokens)
    lengths = np.asarray(prompt_lengths).reshape(-1)
    if block.ndim != 2:
        raise ValueError(
            f"prompt_tokens with prompt_lengths must be [batch, length], got shape {block.shape}"
        )
    if lengths.shape[0] != block.shape[0]:
        raise ValueError(
            f"prompt_lengths has {lengths.shape[0]} entries for {block.shape[0]} prompts"
        )
    if (lengths > block.shape[1]).any():
        index = int(np.argmax(lengths > block.shape[1]))
        raise ValueError(
            f"prompt_lengths[{index}]={int(lengths[index])} exceeds the padded "
            f"prompt_tokens length {block.shape[1]}"
        )
    return [block[i, : max(int(n), 0)] for i, n in enumerate(lengths)]


def pack_prompts(
    config: ModelConfig,
    prompt_tokens,
    prompt_lengths,
    *,
    max_new_tokens,
    pad_id: int,
    row_multiple: int = 1,
) -> PromptBlock:
    """Validates prompts and packs them into a bucketed block.

    Args:
      prompt_tokens: list of int sequences, or an int array [B, L] with `prompt_lengths` [B]
        (without them every row is L tokens long).
      max_new_tokens: an int, or one budget per prompt [B].
      row_multiple: rows are padded (with 1-token dummy prompts) to a multiple of this, e.g. the
        number of batch shards; callers drop the dummy rows' outputs.

    Raises:
      ValueError: naming the empty prompt, the out-of-vocabulary token or the prompt that does not
        fit `max_new_tokens` more tokens within `config.max_position_embeddings`.
    """
    rows = _ragged_rows(prompt_tokens, prompt_lengths)
    if not rows:
        raise ValueError("prompt_tokens is empty: pass at least one prompt")
    budgets = np.broadcast_to(np.asarray(max_new_tokens), (len(rows),))
    for index, row in enumerate(rows):
        if row.size == 0:
            raise ValueError(f"prompt_tokens[{index}] is empty; every prompt needs >= 1 token")
        if not np.issubdtype(row.dtype, np.integer):
            raise ValueError(
                f"prompt_tokens[{index}] must hold integer token ids, got dtype {row.dtype}"
            )
        bad = (row < 0) | (row >= config.vocab_size)
        if bad.any():
            where = int(np.argmax(bad))
            raise ValueError(
                f"prompt_tokens[{index}][{where}] = {int(row[where])} is outside the "
                f"vocabulary [0, {config.vocab_size})"
            )
        if row.size + budgets[index] > config.max_position_embeddings:
            raise ValueError(
                f"prompt_tokens[{index}] has {row.size} tokens; with max_new_tokens="
                f"{int(budgets[index])} that exceeds max_position_embeddings="
                f"{config.max_position_embeddings}"
            )
    num_rows = -(-len(rows) // row_multiple) * row_multiple
    width = bucket_length(max(row.size for row in rows))
    tokens = np.full((num_rows, width), pad_id if 0 <= pad_id < config.vocab_size else 0, np.int32)
    lengths = np.ones((num_rows,), np.int32)
    for index, row in enumerate(rows):
        tokens[index, : row.size] = row
        lengths[index] = row.size
    return PromptBlock(tokens, lengths)
