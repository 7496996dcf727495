"""One rollout round: prompts -> G samples each -> rewards, and the train batch built from them.

    rollout = sample_rollout(model_config, params, tokenizer, prompts, settings, rng)
    rollout = score_rollout(rollout, settings)           # adds rewards / correctness
    batch = train_batch(rollout, advantages, seq_len=..., pad_id=...)

A rollout is a dict of numpy arrays with one row per sample (row = prompt * G + sample, the G
samples of a prompt contiguous), fixed trailing shapes so that rounds concatenate (DAPO dynamic
sampling keeps whole groups across rounds):

  prompt_tokens      int32 [N, P]   prompt ids, right-padded to P = seq_len - max_new_tokens
  prompt_lengths     int32 [N]
  completion_tokens  int32 [N, M]   sampled ids (M = max_new_tokens), pad after the end
  completion_lengths int32 [N]      including a final stop token
  truncated          bool  [N]      the row hit max_new_tokens without a stop token
  logprobs           float32 [N, M] log p(token) under the untempered sampler model
  sampling_logprobs  float32 [N, M] log p(token) under the (tempered, filtered) distribution
  completion_text    str [N]        decoded completion (a final stop token not rendered)
  answer             str [N]        the prompt's gold answer
after scoring also:
  correct            float32 [N]    1 where the grader accepts the answer
  rewards            float32 [N]    the shaped reward (correctness + enabled penalty terms)
  reward_<term>      float32 [N]    each shaped term (correctness, length, overlong, format)

Sampling and decoding go through `reasonrl.sampling.complete`, the path the evals and distillation
use. Model output is only ever parsed by the grader (reasonrl.rewards), never executed.

On several processes (hosts) every process holds the same rollout: sampling is one program over
the global mesh (each host's devices sample their rows; the samples come back to every host),
and `score_rollout` grades only this process's contiguous share of the rows
(`reasonrl.parallel.distributed.process_share`), then gathers every share's grades, so the
rewards, advantages and train batch are the same on every process and equal to one process's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np
from absl import logging

from reasonrl.models.config import ModelConfig
from reasonrl.parallel.distributed import allgather_objects, process_share
from reasonrl.rewards import compute_rewards
from reasonrl.rewards.shaping import shape_rewards
from reasonrl.sampling.completions import complete, prompt_budget

Rollout = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class RolloutSettings:
    """Sampling and reward settings of the RL loop (built from a stage's `rl` section)."""

    group_size: int
    max_prompt_len: int
    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int
    stop_tokens: tuple[int, ...]
    pad_id: int
    reward: str = "math_correctness"
    wrong_reward: float = 0.0
    format_weight: float = 0.0
    length_penalty: str = ""
    length_penalty_weight: float = 1.0
    overlong_cache_length: int = 0
    decode_slots: int = 0  # 0: the decode engine's default

    @classmethod
    def from_config(
        cls, rl, *, seq_len: int, stop_tokens: Sequence[int], pad_id: int
    ) -> RolloutSettings:
        return cls(
            group_size=rl.group_size,
            max_prompt_len=seq_len - rl.max_new_tokens,
            max_new_tokens=rl.max_new_tokens,
            temperature=float(rl.temperature),
            top_p=float(rl.top_p),
            top_k=rl.top_k,
            stop_tokens=tuple(stop_tokens),
            pad_id=pad_id,
            reward=rl.reward,
            wrong_reward=float(rl.wrong_reward),
            format_weight=float(rl.format_weight),
            length_penalty=rl.length_penalty,
            length_penalty_weight=float(rl.length_penalty_weight),
            overlong_cache_length=rl.overlong_cache_length,
            decode_slots=rl.decode_slots,
        )


def _padded(rows: Sequence[np.ndarray], width: int, pad_id: int) -> np.ndarray:
    out = np.full((len(rows), width), pad_id, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _check_prompts_fit(config: ModelConfig, prompt_ids, settings: RolloutSettings) -> None:
    """The prompt pipeline drops longer prompts, so a prompt that does not fit is a bug: raise."""
    budget = prompt_budget(config, settings.max_new_tokens, settings.max_prompt_len)
    longest = max(len(ids) for ids in prompt_ids)
    if longest > budget:
        raise ValueError(
            f"a prompt of {longest} tokens exceeds max_prompt_len={budget} "
            f"(min(train.seq_len, max_position_embeddings) - rl.max_new_tokens)"
        )


def sample_rollout(
    config: ModelConfig,
    params,
    tokenizer,
    prompts: dict,
    settings: RolloutSettings,
    rng: jax.Array,
    *,
    greedy: bool = False,
) -> Rollout:
    """G samples for each prompt of `prompts` ({"prompt_ids": [...], "answer": [...]}).

    With `greedy`, one argmax completion per prompt (evaluation) instead.
    """
    _check_prompts_fit(config, prompts["prompt_ids"], settings)
    group = 1 if greedy else settings.group_size
    completions = complete(
        config,
        params,
        tokenizer,
        prompts["prompt_ids"],
        max_new_tokens=settings.max_new_tokens,
        rng=rng,
        temperature=0.0 if greedy else settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        num_samples=group,
        stop_tokens=settings.stop_tokens,
        pad_id=settings.pad_id,
        max_prompt_len=settings.max_prompt_len,
        decode_slots=settings.decode_slots or None,
    )
    return {
        "prompt_tokens": np.repeat(
            _padded(completions.prompts, settings.max_prompt_len, settings.pad_id), group, axis=0
        ),
        "prompt_lengths": completions.prompt_lengths,
        "completion_tokens": completions.tokens,
        "completion_lengths": completions.lengths,
        "truncated": completions.truncated,
        "logprobs": completions.logprobs,
        "sampling_logprobs": completions.sampling_logprobs,
        "completion_text": np.asarray(completions.texts, dtype=object),
        "answer": np.repeat(np.asarray(prompts["answer"], dtype=object), group),
    }


def score_rollout(
    rollout: Rollout, settings: RolloutSettings, *, group_size: int | None = None
) -> Rollout:
    """Grades every completion and adds `correct`, `rewards` and the `reward_<term>` fields.

    With several processes each grades its share of the rows (`grade_rows`); every process
    gets every row's grade, so all return the same rollout.
    """
    texts, golds = list(rollout["completion_text"]), list(rollout["answer"])
    grades = grade_rows(settings, texts, golds)  # float32 [N, 2]: reward, format score
    correct = grades[:, 0] > 0
    format_scores = grades[:, 1] if settings.format_weight else None
    overlong = (
        {"max_length": settings.max_new_tokens, "cache_length": settings.overlong_cache_length}
        if settings.overlong_cache_length
        else None
    )
    shaped = shape_rewards(
        np.where(correct, 1.0, settings.wrong_reward),
        rollout["completion_lengths"],
        group_size=group_size or settings.group_size,
        length_penalty=settings.length_penalty or None,
        length_penalty_weight=settings.length_penalty_weight,
        overlong=overlong,
        format_scores=format_scores,
        format_weight=settings.format_weight,
    )
    out = dict(rollout, correct=correct.astype(np.float32), rewards=shaped.total)
    out.update({f"reward_{name}": value for name, value in shaped.components.items()})
    return out


def grade_rows(settings: RolloutSettings, texts: Sequence[str], golds: Sequence[str]) -> np.ndarray:
    """float32 [N, 2]: the `settings.reward` score and (with a format weight, else 0) the
    `format` score of each of the N rows, on every process.

    This process calls the grader on its share of the rows only (`process_share`: process i of
    P grades rows [i * ceil(N / P), (i + 1) * ceil(N / P))) and logs how many rows that was
    (INFO, "grader: process i of P graded rows a:b (k of N)"); the shares are gathered from all
    processes in row order. A collective when there are several processes: every process must
    call it with the same N.
    """
    share = process_share(len(texts))
    local = np.zeros((share.stop - share.start, 2), np.float32)
    if share.stop > share.start:
        texts_here, golds_here = list(texts[share]), list(golds[share])
        local[:, 0] = compute_rewards(settings.reward, texts_here, golds_here)
        if settings.format_weight:
            local[:, 1] = compute_rewards("format", texts_here, golds_here)
    logging.info(
        "grader: process %d of %d graded rows %d:%d (%d of %d)",
        jax.process_index(),
        jax.process_count(),
        share.start,
        share.stop,
        share.stop - share.start,
        len(texts),
    )
    grades = np.concatenate(allgather_objects(local)) if jax.process_count() > 1 else local
    if grades.shape != (len(texts), 2):
        raise RuntimeError(
            f"the processes' grades cover {grades.shape[0]} rows, not the rollout's {len(texts)}"
        )
    return grades


def train_batch(
    rollout: Rollout,
    advantages: np.ndarray,
    *,
    seq_len: int,
    pad_id: int,
    rows: int | None = None,
    sampler_field: str = "logprobs",
) -> dict[str, np.ndarray]:
    """The policy-gradient batch [R, seq_len] for the rollout's N rows (R = rows or N >= N).

    Row i holds prompt_i then completion_i then padding. Position t predicts tokens[t + 1]; it
    is scored (loss_mask 1) when that token belongs to the completion. `sampler_logprobs`
    carries the rollout's `sampler_field` log-probs at the scored positions (choose the field
    the trainer's scoring matches: `logprobs` at temperature 1, else `sampling_logprobs`). Rows
    N..R-1 are empty (loss_mask 0): they fill a batch that dynamic sampling could not complete.
    """
    n = rollout["prompt_lengths"].shape[0]
    rows = n if rows is None else rows
    prompt_len = rollout["prompt_lengths"][:, None]
    end = prompt_len + rollout["completion_lengths"][:, None]
    col = np.arange(seq_len)[None, :]
    prompt_part = np.take_along_axis(
        rollout["prompt_tokens"], np.clip(col, 0, rollout["prompt_tokens"].shape[1] - 1), axis=1
    )
    completion_index = np.clip(col - prompt_len, 0, rollout["completion_tokens"].shape[1] - 1)
    completion_part = np.take_along_axis(rollout["completion_tokens"], completion_index, axis=1)
    tokens = np.where(
        col < prompt_len, prompt_part, np.where(col < end, completion_part, pad_id)
    ).astype(np.int32)
    targets = np.full_like(tokens, pad_id)
    targets[:, :-1] = tokens[:, 1:]
    predicted = col + 1  # the position of each target
    loss_mask = (predicted >= prompt_len) & (predicted < end)
    # log-prob of target t+1 = sampler log-prob of completion token t+1-P.
    sampled = rollout[sampler_field]
    target_index = np.clip(predicted - prompt_len, 0, sampled.shape[1] - 1)
    sampler_logprobs = np.where(loss_mask, np.take_along_axis(sampled, target_index, axis=1), 0.0)
    batch = {
        "tokens": tokens,
        "targets": targets,
        "positions": np.broadcast_to(col, tokens.shape).astype(np.int32),
        "segment_ids": (col < end).astype(np.int32),
        "loss_mask": loss_mask.astype(np.float32),
        "advantages": np.asarray(advantages, np.float32),
        "sampler_logprobs": sampler_logprobs.astype(np.float32),
    }
    if rows > n:
        batch = {
            key: np.concatenate(
                [
                    value,
                    np.full(
                        (rows - n, *value.shape[1:]),
                        pad_id if key in ("tokens", "targets") else 0,
                        value.dtype,
                    ),
                ]
            )
            for key, value in batch.items()
        }
    return batch
