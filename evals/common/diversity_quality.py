"""Response quality for NoveltyBench's utility: raw scores of a reasonrl reward-model export.

A (prompt, response) pair is rendered as the ``preference`` data task renders what the reward
model was trained on: the prompt as the user turn and the response as the assistant turn of
``chat_template``, cut to the model's ``max_position_embeddings`` (the end of an over-long
response is dropped, as the pair packer does); the score is the head on the last token's
hidden state (``reasonrl.objectives.reward_model.reward_scores``). Rows are scored
``ROWS_PER_CALL`` at a time, padded to a length bucket, so a run compiles once per bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from reasonrl import data as data_lib
from reasonrl.data.tokenizer.chat_templates import get_chat_template
from reasonrl.objectives.registry import ModelContext
from reasonrl.objectives.reward_model import (
    REWARD_HEAD_FILE,
    load_reward_model,
    reward_scores,
)
from reasonrl.sampling.problem_runs import SettingsError
from reasonrl.sampling.prompt_block import bucket_length

ROWS_PER_CALL = 16


def check_reward_model(path: str) -> str:
    """The absolute export directory, or SettingsError naming --reward_model."""
    directory = Path(path).absolute()
    if not (directory / REWARD_HEAD_FILE).is_file() or not (directory / "config.json").is_file():
        raise SettingsError(
            f"--reward_model {path!r}: not a reward-model export (needs config.json and "
            f"{REWARD_HEAD_FILE}, which a reward_model stage writes into its export/)"
        )
    return str(directory)


class RewardModelScorer:
    """(prompts, responses) -> raw reward float32 [N] under a reward-model export."""

    def __init__(self, export_dir: str, chat_template: str):
        self.config, self.params = load_reward_model(export_dir)
        self.tokenizer = data_lib.load_tokenizer(export_dir)
        self.template = get_chat_template(chat_template)
        context = ModelContext(self.config)
        self._score = jax.jit(
            lambda params, tokens, positions, segments, last: reward_scores(
                context, params, tokens, positions, segments, last
            )
        )

    def _token_ids(self, prompt: str, response: str) -> list[int]:
        messages = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
        ]
        ids = self.template.render(self.tokenizer, messages).token_ids
        return [int(token) for token in ids][: self.config.max_position_embeddings]

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Raw rewards float32 [N] of N (prompt, response) pairs."""
        ids = [self._token_ids(p, r) for p, r in zip(prompts, responses, strict=True)]
        out = np.zeros((len(ids),), np.float32)
        for start in range(0, len(ids), ROWS_PER_CALL):
            chunk = ids[start : start + ROWS_PER_CALL]
            width = min(
                bucket_length(max(len(row) for row in chunk)), self.config.max_position_embeddings
            )
            tokens = np.full((ROWS_PER_CALL, width), self.tokenizer.pad_id, np.int32)
            lengths = np.ones((ROWS_PER_CALL,), np.int32)
            for row, token_ids in enumerate(chunk):
                tokens[row, : len(token_ids)] = token_ids
                lengths[row] = len(token_ids)
            columns = np.arange(width, dtype=np.int32)[None, :]
            segments = (columns < lengths[:, None]).astype(np.int32)
            positions = np.broadcast_to(columns, tokens.shape)
            scores = self._score(self.params, tokens, positions, segments, lengths - 1)
            out[start : start + len(chunk)] = np.asarray(scores)[: len(chunk)]
        return out
