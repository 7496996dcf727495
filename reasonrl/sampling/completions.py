"""One path from prompt ids to decoded, graded completions (RL rollouts, evals, distillation).

    completions = complete(config, params, tokenizer, prompt_ids, max_new_tokens=64, rng=key,
                           temperature=0.6, top_p=0.95, num_samples=4, stop_tokens=stops,
                           pad_id=tokenizer.pad_id)
    completions.texts[5]            # sample 1 of prompt 1: row = prompt * num_samples + sample
    grades = grade_completions(completions, golds)      # golds: one gold answer per prompt

A row's text is its generated tokens minus a final stop token (a stop token is not text). The
grader (``reasonrl.rewards.grade_batch`` unless another is given) parses model output; it never
executes it.

Prompts that do not fit. A prompt fits when it leaves room for ``max_new_tokens`` within the
model's context (``config.max_position_embeddings``) and is at most ``max_prompt_len`` tokens
when that is given (:func:`prompt_budget`). ``truncate_prompt`` says what happens to the others:

* ``"none"``: the prompt is not sampled. Its rows finish with reason ``"prompt_too_long"``: no
  tokens, length 0, text ""; :func:`grade_completions` grades them ``prompt_too_long``
  (incorrect) without calling the grader. The prompts that fit are sampled as one batch without
  it, so a row's PRNG key is its row among the rows that were sampled.
* ``"left"``: only its last ``budget`` tokens are kept; ``prompt_truncated`` marks its rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from reasonrl import rewards
from reasonrl.models.config import ModelConfig
from reasonrl.rewards import GradeResult
from reasonrl.sampling.generate import GenerationResult, decode_texts, generate
from reasonrl.sampling.prompt_block import check_settings

PROMPT_TOO_LONG = "prompt_too_long"
TRUNCATE_PROMPT_CHOICES = ("none", "left")
PROMPT_TOO_LONG_GRADE = GradeResult(
    None, False, PROMPT_TOO_LONG, "the prompt leaves no room for max_new_tokens"
)

# (completions, gold answers) -> one GradeResult per completion, in order.
Grader = Callable[[Sequence[str], Sequence[str]], list[GradeResult]]


@dataclasses.dataclass(frozen=True)
class Completions:
    """The completions of B prompts: N = B * num_samples rows, row = prompt * num_samples + sample.

    Attributes:
        texts: N decoded completions, a final stop token not rendered ("" where the prompt did
            not fit).
        tokens: int32 [N, M] generated ids (M = max_new_tokens), pad_id after each row's end.
        lengths: int32 [N] generated tokens, a final stop token included.
        logprobs: float32 [N, M] log p(token) under the untempered model; 0 after the end.
        sampling_logprobs: float32 [N, M] log p(token) under the tempered, top-k/top-p filtered
            distribution it was drawn from; 0 for greedy and after the end.
        finish_reasons: str [N] "stop" (a stop token was generated), "length" (M tokens without
            one) or "prompt_too_long" (not sampled).
        prompt_truncated: bool [N] the row's prompt lost its first tokens (truncate_prompt "left").
        prompts: B int arrays, the prompts as sampled (truncated ones cut, too long ones whole).
        num_samples: samples per prompt.
        prompt_budget: the longest prompt that fit (see :func:`prompt_budget`).
    """

    texts: list[str]
    tokens: np.ndarray
    lengths: np.ndarray
    logprobs: np.ndarray
    sampling_logprobs: np.ndarray
    finish_reasons: np.ndarray
    prompt_truncated: np.ndarray
    prompts: list[np.ndarray]
    num_samples: int
    prompt_budget: int

    @property
    def truncated(self) -> np.ndarray:
        """bool [N]: the row reached max_new_tokens without a stop token."""
        return self.finish_reasons == "length"

    @property
    def prompt_too_long(self) -> np.ndarray:
        """bool [N]: the row's prompt did not fit, so the row was not sampled."""
        return self.finish_reasons == PROMPT_TOO_LONG

    def by_prompt(self, per_row: np.ndarray) -> np.ndarray:
        """[B]: a per-row field that is the same for a prompt's rows (e.g. prompt_too_long)."""
        return per_row[:: self.num_samples]

    @property
    def prompt_lengths(self) -> np.ndarray:
        """int32 [N]: the length of each row's prompt as sampled."""
        return np.repeat(np.array([p.size for p in self.prompts], np.int32), self.num_samples)


class FittedPrompts(NamedTuple):
    """B prompts fitted to a budget.

    prompts: B int arrays, cut to their last ``budget`` tokens where ``truncated``.
    fits: bool [B] the prompt is sampled.
    truncated: bool [B] the prompt was cut.
    """

    prompts: list[np.ndarray]
    fits: np.ndarray
    truncated: np.ndarray


def prompt_budget(
    config: ModelConfig, max_new_tokens: int, max_prompt_len: int | None = None
) -> int:
    """The longest prompt that leaves ``max_new_tokens`` within the context (and max_prompt_len)."""
    budget = config.max_position_embeddings - int(max_new_tokens)
    return budget if max_prompt_len is None else min(budget, int(max_prompt_len))


def fit_prompts(
    prompt_ids: Sequence[Sequence[int]], budget: int, truncate_prompt: str = "none"
) -> FittedPrompts:
    """Which prompts fit ``budget`` tokens, or with ``truncate_prompt="left"`` their last tokens.

    A budget below one token fits nothing, not even by truncation.
    """
    if truncate_prompt not in TRUNCATE_PROMPT_CHOICES:
        raise ValueError(
            f"truncate_prompt must be one of {TRUNCATE_PROMPT_CHOICES}, got {truncate_prompt!r}"
        )
    prompts = [np.asarray(ids).reshape(-1) for ids in prompt_ids]
    too_long = np.array([prompt.size > budget for prompt in prompts], bool)
    if truncate_prompt == "left" and budget >= 1:
        cut = [prompt[-budget:] if long else prompt for prompt, long in zip(prompts, too_long)]
        return FittedPrompts(cut, np.ones_like(too_long), too_long)
    return FittedPrompts(prompts, ~too_long, np.zeros_like(too_long))


def _expand(result: GenerationResult, sampled: np.ndarray, pad_id: int) -> dict[str, np.ndarray]:
    """The result's arrays with a row for every row of the batch ([N, ...]); the rows not
    ``sampled`` (bool [N]) are empty: no tokens, finish reason prompt_too_long."""
    rows, width = sampled.shape[0], result.tokens.shape[1]
    out = {
        "tokens": np.full((rows, width), pad_id, np.int32),
        "lengths": np.zeros((rows,), np.int32),
        "logprobs": np.zeros((rows, width), np.float32),
        "sampling_logprobs": np.zeros((rows, width), np.float32),
        "finish_reasons": np.full((rows,), PROMPT_TOO_LONG),
    }
    for name, array in out.items():
        array[sampled] = getattr(result, name)
    return out


def _empty_result(max_new_tokens: int) -> GenerationResult:
    """A GenerationResult of no rows (every prompt of the batch was too long)."""
    empty = np.zeros((0, max_new_tokens), np.float32)
    return GenerationResult(
        np.zeros((0, max_new_tokens), np.int32),
        empty,
        empty,
        np.zeros((0,), np.int32),
        np.zeros((0,), str),
        0,
    )


def complete(
    config: ModelConfig,
    params,
    tokenizer,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    rng,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    num_samples: int = 1,
    stop_tokens: Sequence[int] = (),
    pad_id: int = 0,
    max_prompt_len: int | None = None,
    truncate_prompt: str = "none",
    decode_slots: int | None = None,
) -> Completions:
    """``num_samples`` decoded completions of each prompt (``sampling.generate`` underneath).

    Args:
        prompt_ids: B prompts, each a sequence of token ids.
        rng, temperature, top_p, top_k, num_samples, stop_tokens, pad_id: as ``generate``.
        max_prompt_len: a prompt limit tighter than the model's context, if any.
        truncate_prompt: "none" or "left", for prompts that do not fit (module docstring).
        decode_slots: rows the decode engine samples at once (`generate`; None: its default).

    Raises:
        ValueError: as ``generate`` (bad settings, empty prompt, token outside the vocabulary).
    """
    check_settings(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        num_samples=num_samples,
    )
    budget = prompt_budget(config, max_new_tokens, max_prompt_len)
    fitted = fit_prompts(prompt_ids, budget, truncate_prompt)
    sampled = [prompt for prompt, fits in zip(fitted.prompts, fitted.fits) if fits]
    result = (
        generate(
            config,
            params,
            sampled,
            max_new_tokens=max_new_tokens,
            rng=rng,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            num_samples=num_samples,
            stop_tokens=stop_tokens,
            pad_id=pad_id,
            decode_slots=decode_slots,
        )
        if sampled
        else _empty_result(max_new_tokens)
    )
    rows = _expand(result, np.repeat(fitted.fits, num_samples), pad_id)
    return Completions(
        texts=decode_texts(tokenizer, rows["tokens"], rows["lengths"], rows["finish_reasons"]),
        prompt_truncated=np.repeat(fitted.truncated, num_samples),
        prompts=fitted.prompts,
        num_samples=num_samples,
        prompt_budget=budget,
        **rows,
    )


def grade_completions(
    completions: Completions, golds: Sequence[str], grader: Grader | None = None
) -> list[GradeResult]:
    """One grade per row of ``completions``.

    Args:
        golds: the gold answer of each prompt (B, not repeated per sample).
        grader: (texts, golds) -> grades; default ``rewards.grade_batch`` (default workers and
            timeout). It sees only the rows that were sampled; a prompt that did not fit grades
            as ``PROMPT_TOO_LONG_GRADE`` (incorrect).
    """
    grader = grader or rewards.grade_batch
    n = completions.num_samples
    sampled = np.flatnonzero(~completions.prompt_too_long)
    grades = [PROMPT_TOO_LONG_GRADE] * len(completions.texts)
    if sampled.size:
        graded = grader(
            [completions.texts[row] for row in sampled], [golds[row // n] for row in sampled]
        )
        for row, grade in zip(sampled, graded, strict=True):
            grades[row] = grade
    return grades
