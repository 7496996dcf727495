"""RL prompts: a grain pipeline of (prompt token ids, gold answer) batches.

    iterator = make_prompt_pipeline(stage.data, stage.rl, tokenizer, batch_size=8,
                                    max_prompt_len=192, seed=0)
    batch = next(iterator)    # {"prompt_ids": [8 int32 arrays], "answer": [8 str],
                              #  "problem": [8 str]}

The data spec takes the engine's `source` section (reasonrl.data.pipeline) plus `shuffle` and
`num_epochs`; no task or packing applies. A record gives its problem under `rl.prompt_field` and
its gold answer under `rl.answer_field`; the problem becomes a prompt with `rl.prompt_template` and
`rl.chat_template` (reasonrl.data.prompt_templates). Prompts longer than `max_prompt_len` tokens are
dropped (and counted in the log) rather than truncated: a cut problem has no right answer.
`check_prompt_spec` builds a spec and tries its first record, before anything trains.
The iterator is a grain DatasetIterator whose state is checkpointed with the train state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import grain
import numpy as np
from absl import logging

from reasonrl.data.pipeline import LocatedTask, indexed_records
from reasonrl.data.prompt_templates import prompt_token_ids
from reasonrl.data.sources.registry import RecordSource, make_source
from reasonrl.data.spec import SpecError, parse_section
from reasonrl.data.tasks import record_field
from reasonrl.data.tokenizer.base import MissingSpecialTokenError, Tokenizer
from reasonrl.data.tokenizer.chat_templates import get_chat_template


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
    """record -> {"prompt_ids": int32 [L], "answer": str, "problem": str}; `rl_where` is the
    dotted name of the `rl` section in errors."""

    def __init__(self, rl, tokenizer: Tokenizer, rl_where: str = "rl"):
        self.rl = rl
        self.tokenizer = tokenizer
        self.rl_where = rl_where
        try:
            get_chat_template(rl.chat_template).check_tokenizer(tokenizer)
        except MissingSpecialTokenError as error:
            raise MissingSpecialTokenError(f"{rl_where}.chat_template: {error}") from None

    def _field(self, record: dict[str, Any], option: str) -> str:
        """The record's value (as text) of the field that `rl.<option>` names."""
        name = getattr(self.rl, option)
        return str(record_field(record, name, f"{self.rl_where}.{option}"))

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        problem, answer = self._field(record, "prompt_field"), self._field(record, "answer_field")
        ids = prompt_token_ids(
            problem,
            prompt_template=self.rl.prompt_template,
            chat_template=self.rl.chat_template,
            tokenizer=self.tokenizer,
        )
        return {"prompt_ids": np.asarray(ids, np.int32), "answer": answer, "problem": problem}


class _FitsPrompt:
    def __init__(self, max_prompt_len: int):
        self.max_prompt_len = max_prompt_len
        self.dropped = 0

    def __call__(self, example: dict[str, Any]) -> bool:
        fits = len(example["prompt_ids"]) <= self.max_prompt_len
        if not fits:
            self.dropped += 1
            if self.dropped in (1, 10, 100, 1000):
                logging.warning(
                    "%d prompt(s) longer than %d tokens dropped", self.dropped, self.max_prompt_len
                )
        return fits


def _as_lists(examples: list[dict[str, Any]]) -> dict[str, list]:
    return {key: [example[key] for example in examples] for key in examples[0]}


def _build(
    spec: Any, rl, tokenizer: Tokenizer, where: str, rl_where: str
) -> tuple[PromptSpec, RecordSource, LocatedTask]:
    """(config, source, located prompt task) of `spec`, all checked."""
    config = parse_section(PromptSpec, spec, where)
    source = make_source(config.source, f"{where}.source")
    return config, source, LocatedTask(_PromptTask(rl, tokenizer, rl_where), source)


def check_prompt_spec(
    spec: Any, rl, tokenizer: Tokenizer, *, where: str = "spec", rl_where: str = "rl"
) -> None:
    """Builds `spec`'s source and turns its first record into a prompt, so that a missing or
    empty file, a chat template the tokenizer lacks tokens of, or a first record without
    `rl.prompt_field` / `rl.answer_field` fails before anything trains.

    Raises:
      SpecError, MissingSpecialTokenError: naming the field (under `where` / `rl_where`).
      MalformedRecordError (MissingFieldError): naming "path:line" of the first record.
    """
    _build(spec, rl, tokenizer, where, rl_where)[2].check_first_record()


def make_prompt_pipeline(
    spec: Any,
    rl,
    tokenizer: Tokenizer,
    *,
    batch_size: int,
    max_prompt_len: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
    where: str = "spec",
    rl_where: str = "rl",
) -> grain.DatasetIterator:
    """Batches of `batch_size` prompts, shuffled by `seed`, this host's shard of the records.

    `where` / `rl_where` are the dotted names of `spec` and `rl` in errors. A record without
    `rl.prompt_field` or `rl.answer_field` raises MissingFieldError naming "path:line" from
    `next()`.
    """
    config, source, task = _build(spec, rl, tokenizer, where, rl_where)
    records = indexed_records(
        source, config, seed=seed, shard_index=shard_index, shard_count=shard_count, where=where
    )
    examples = records.map(task).filter(_FitsPrompt(max_prompt_len))
    batches = examples.to_iter_dataset().batch(batch_size, drop_remainder=True, batch_fn=_as_lists)
    return iter(batches)
