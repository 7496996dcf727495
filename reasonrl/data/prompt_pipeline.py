"""RL prompts: a grain pipeline of (prompt token ids, gold answer) batches.

    iterator = make_prompt_pipeline(stage.data, stage.rl, tokenizer, batch_size=8,
                                    max_prompt_len=192, seed=0)
    batch = next(iterator)    # {"prompt_ids": [8 int32 arrays], "answer": [8 str],
                              #  "problem": [8 str]}

The data spec takes the engine's `source` section (reasonrl.data.pipeline) plus `shuffle` and
`num_epochs`; no task or packing applies. A record gives its problem under `rl.prompt_field` and its gold
answer under `rl.answer_field`; the problem becomes a prompt with `rl.prompt_template` and
`rl.chat_template` (reasonrl.data.prompt_templates). Prompts longer than `max_prompt_len` tokens are
dropped (and counted in the log) rather than truncated: a cut problem has no right answer.
The iterator is a grain DatasetIterator whose state is checkpointed with the train state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import grain
import numpy as np
from absl import logging

from reasonrl.data.pipeline import default_shard, LocatedTask
from reasonrl.data.prompt_templates import prompt_token_ids
from reasonrl.data.sources.registry import SOURCE_TYPES
from reasonrl.data.spec import SpecError, parse_section, parse_typed_section
from reasonrl.data.tokenizer.base import Tokenizer


@dataclasses.dataclass(frozen=True)
class PromptSpec:
    """A prompt data spec: `{"source": {...}, "shuffle": True, "num_epochs": None}`."""

    source: dict[str, Any]
    shuffle: bool = True
    num_epochs: int | None = None

    def __post_init__(self):
        if self.num_epochs is not None and self.num_epochs < 1:
            raise SpecError(f"num_epochs: must be >= 1 or None, got {self.num_epochs}")


class _PromptTask:
    """record -> {"prompt_ids": int32 [L], "answer": str, "problem": str}."""

    def __init__(self, rl, tokenizer: Tokenizer):
        self.rl = rl
        self.tokenizer = tokenizer

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        for field in (self.rl.prompt_field, self.rl.answer_field):
            if field not in record:
                raise KeyError(f"record has no field {field!r} (it has {sorted(record)}); set "
                               f"rl.prompt_field / rl.answer_field")
        problem = str(record[self.rl.prompt_field])
        ids = prompt_token_ids(problem, prompt_template=self.rl.prompt_template,
                               chat_template=self.rl.chat_template, tokenizer=self.tokenizer)
        return {"prompt_ids": np.asarray(ids, np.int32), "answer": str(record[self.rl.answer_field]),
                "problem": problem}


class _FitsPrompt:
    def __init__(self, max_prompt_len: int):
        self.max_prompt_len = max_prompt_len
        self.dropped = 0

    def __call__(self, example: dict[str, Any]) -> bool:
        fits = len(example["prompt_ids"]) <= self.max_prompt_len
        if not fits:
            self.dropped += 1
            if self.dropped in (1, 10, 100, 1000):
                logging.warning("%d prompt(s) longer than %d tokens dropped", self.dropped,
                                self.max_prompt_len)
        return fits


def _as_lists(examples: list[dict[str, Any]]) -> dict[str, list]:
    return {key: [example[key] for example in examples] for key in examples[0]}


def make_prompt_pipeline(spec: Any, rl, tokenizer: Tokenizer, *, batch_size: int,
                         max_prompt_len: int, seed: int = 0, shard_index: int | None = None,
                         shard_count: int | None = None) -> grain.DatasetIterator:
    """Batches of `batch_size` prompts, shuffled by `seed`, this host's shard of the records."""
    config = parse_section(PromptSpec, spec, "spec")
    source_class, source_config = parse_typed_section(SOURCE_TYPES, config.source, "spec.source")
    shard_index, shard_count = default_shard(shard_index, shard_count)
    source = source_class.from_config(source_config)
    records = grain.MapDataset.source(source).map_with_index(
        lambda index, record: (index, record))[shard_index::shard_count]
    if len(records) == 0:
        raise SpecError(f"spec.source: shard {shard_index} of {shard_count} holds no records")
    if config.shuffle:
        records = records.shuffle(seed)
    if config.num_epochs != 1:
        records = records.repeat(config.num_epochs)
    examples = records.map(LocatedTask(_PromptTask(rl, tokenizer), source)).filter(
        _FitsPrompt(max_prompt_len))
    batches = examples.to_iter_dataset().batch(batch_size, drop_remainder=True,
                                               batch_fn=_as_lists)
    return iter(batches)
