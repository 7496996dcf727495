"""`make_pipeline`: from a data spec to an iterator of training batches.

A spec is a plain dict or ml_collections.ConfigDict:

    {
      "source":  {"type": "jsonl", "path": ".../gsm8k_train.jsonl"},   # sources.SOURCE_TYPES
      "task":    {"type": "sft", "chat_template": "chatml",             # tasks.TASK_TYPES
                  "prompt_field": "question", "response_field": "answer"},
      "packing": {"type": "first_fit", "num_bins": 16},                 # packing.PACKERS
      "shuffle": True, "num_epochs": None, "drop_remainder": True,
      "read_threads": 2, "read_buffer_size": 64,
    }

The grain graph is

    MapDataset.source(records)[shard_index::shard_count]   # this host's records
      .shuffle(seed)            # global, deterministic permutation; reseeded every epoch
      .repeat(num_epochs)       # None: forever
      .map(task)                # tokenise: record -> one document's features
      .to_iter_dataset(...)     # read_threads threads tokenise ahead
      -> packer                 # documents -> rows of seq_len tokens
      .batch(batch_size)        # per-host batch

Each batch is a dict of int32 [batch_size, seq_len] arrays: tokens, targets, loss_mask,
segment_ids, positions (meanings in packing.py). The `preference` task instead gives one pair
per row (packing "pair", its default): chosen_* / rejected_* [batch_size, seq_len] arrays,
chosen_last_index / rejected_last_index int32 [batch_size] and pair_mask float32 [batch_size]
(see packing.PairPacker).

An error raised while turning a record into features (a missing field, a value of the wrong
type) names the record's place first: "path:line: ..." for JSON Lines files.

The iterator is a grain DatasetIterator: `get_state()` is a JSON-native dict;
`iterator_state_to_bytes` / `restore_iterator_state` turn it into bytes and back. Restoring
continues with exactly the batches that would have followed the saved one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grain

from reasonrl.data.packing import PACKERS
from reasonrl.data.sources.base import MalformedRecordError
from reasonrl.data.sources.jsonl import JsonlSource
from reasonrl.data.sources.registry import SOURCE_TYPES
from reasonrl.data.spec import SpecError, parse_section, parse_typed_section
from reasonrl.data.tasks import TASK_TYPES
from reasonrl.data.tokenizer.base import Tokenizer


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Top level of a data spec.

    Attributes:
      source: `{"type": ..., ...}`, see `SOURCE_TYPES`.
      task: `{"type": "pretrain" | "sft" | "preference", ...}`, see `TASK_TYPES`.
      packing: `{"type": ..., ...}`, see `PACKERS`; None: the task's default
        (concat_then_split for documents, pair for preference pairs).
      shuffle: shuffle records (per epoch, by the pipeline seed).
      num_epochs: passes over the data; None repeats forever.
      drop_remainder: drop the last batch when it has fewer than batch_size rows.
      read_threads: threads reading and tokenising records ahead of packing.
      read_buffer_size: records those threads may hold ready.
    """

    source: dict[str, Any]
    task: dict[str, Any]
    packing: dict[str, Any] | None = None
    shuffle: bool = True
    num_epochs: int | None = None
    drop_remainder: bool = True
    read_threads: int = 2
    read_buffer_size: int = 64

    def __post_init__(self):
        if self.num_epochs is not None and self.num_epochs < 1:
            raise SpecError(f"num_epochs: must be >= 1 or None, got {self.num_epochs}")
        if self.read_threads < 0 or self.read_buffer_size < 1:
            raise SpecError("read_threads: must be >= 0 (and read_buffer_size >= 1)")


# spec.packing when it is not given, by the task's LAYOUT.
DEFAULT_PACKING = {"document": {"type": "concat_then_split"}, "pair": {"type": "pair"}}


def _record_location(source: Any, index: int) -> str:
    """"path:line" of record `index` of a JSON Lines source, else "<source> record <index>".

    Only called on the error path: the file is re-read to find the line.
    """
    if isinstance(source, JsonlSource):
        skipped = set(source.malformed_line_numbers)
        seen = -1
        with open(source.path, "rb") as f:
            for number, line in enumerate(f, start=1):
                if line.strip() and number not in skipped:
                    seen += 1
                    if seen == index:
                        return f"{source.path}:{number}"
    return f"{getattr(source, 'path', repr(source))} record {index}"


class LocatedTask:
    """Applies a task to `(source index, record)`; an error names the record's place."""

    def __init__(self, task: Any, source: Any):
        self._task = task
        self._source = source

    def __call__(self, indexed: tuple[int, Any]) -> Any:
        index, record = indexed
        try:
            return self._task(record)
        except (KeyError, ValueError, TypeError) as error:
            location = _record_location(self._source, index)
            message = (error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str)
                       else str(error))
            try:
                located = type(error)(f"{location}: {message}")
            except Exception:  # noqa: BLE001 - an error type that takes other arguments
                raise MalformedRecordError(location, message) from error
            raise located from None


def default_shard(shard_index: int | None, shard_count: int | None) -> tuple[int, int]:
    """(shard_index, shard_count); unset values come from jax.process_index()/process_count()."""
    if shard_index is None or shard_count is None:
        import jax  # Imported lazily: only needed for the multi-host defaults.

        shard_index = jax.process_index() if shard_index is None else shard_index
        shard_count = jax.process_count() if shard_count is None else shard_count
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"need 0 <= shard_index < shard_count, got {shard_index}, {shard_count}")
    return shard_index, shard_count


def make_dataset(
    spec: Any,
    tokenizer: Tokenizer,
    *,
    batch_size: int,
    seq_len: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> grain.IterDataset:
    """The grain IterDataset behind `make_pipeline` (same arguments)."""
    config = parse_section(PipelineConfig, spec, "spec")
    source_class, source_config = parse_typed_section(SOURCE_TYPES, config.source, "spec.source")
    task_class, task_config = parse_typed_section(TASK_TYPES, config.task, "spec.task")
    layout = task_class.LAYOUT
    packing = DEFAULT_PACKING[layout] if config.packing is None else config.packing
    packer_class, packer_config = parse_typed_section(PACKERS, packing, "spec.packing")
    if packer_class.LAYOUT != layout:
        fitting = sorted(name for name, packer in PACKERS.items() if packer.LAYOUT == layout)
        raise SpecError(
            f"spec.packing.type: {dict(packing).get('type')!r} packs {packer_class.LAYOUT}s but "
            f"task {dict(config.task).get('type')!r} yields {layout}s; use one of {fitting}"
        )
    if batch_size < 1 or seq_len < 2:
        raise ValueError(f"need batch_size >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    shard_index, shard_count = default_shard(shard_index, shard_count)

    source = source_class.from_config(source_config)
    task = task_class(task_config, tokenizer)
    records = grain.MapDataset.source(source).map_with_index(
        lambda index, record: (index, record)
    )[shard_index::shard_count]
    if len(records) == 0:
        raise SpecError(
            f"spec.source: shard {shard_index} of {shard_count} holds no records "
            f"(the source has {len(source)})"
        )
    if config.shuffle:
        records = records.shuffle(seed)
    if config.num_epochs != 1:
        records = records.repeat(config.num_epochs)
    documents = records.map(LocatedTask(task, source)).to_iter_dataset(
        grain.ReadOptions(
            num_threads=config.read_threads, prefetch_buffer_size=config.read_buffer_size
        )
    )
    rows = packer_class(packer_config).pack(
        documents, seq_len=seq_len, pad_id=tokenizer.pad_id, seed=seed
    )
    return rows.batch(batch_size, drop_remainder=config.drop_remainder)


def make_pipeline(
    spec: Any,
    tokenizer: Tokenizer,
    *,
    batch_size: int,
    seq_len: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> grain.DatasetIterator:
    """Validates `spec` and returns an iterator of per-host batches.

    Args:
      spec: dict or ConfigDict, see the module docstring and `PipelineConfig`.
      tokenizer: tokenises records; its pad_id fills padding.
      batch_size: rows per batch on this host (B).
      seq_len: tokens per row (T).
      seed: shuffling (and first-fit bin order) seed, in [0, 2**32).
      shard_index, shard_count: this host's shard of the records; default
        jax.process_index() and jax.process_count().

    Returns:
      A grain DatasetIterator yielding dicts of int32 [B, T] arrays: tokens, targets, loss_mask,
      segment_ids, positions (for the preference task: the pair fields of
      packing.PairPacker, [B, T] and [B]).

    Raises:
      SpecError: naming the spec field at fault (unknown key, missing file, bad value).
      MissingSpecialTokenError: when the chat template needs a token the tokenizer lacks.
    """
    return iter(
        make_dataset(
            spec,
            tokenizer,
            batch_size=batch_size,
            seq_len=seq_len,
            seed=seed,
            shard_index=shard_index,
            shard_count=shard_count,
        )
    )


def iterator_state_to_bytes(iterator: grain.DatasetIterator) -> bytes:
    """The iterator's position as UTF-8 JSON, to store next to a model checkpoint."""
    return json.dumps(iterator.get_state(), sort_keys=True).encode("utf-8")


def restore_iterator_state(iterator: grain.DatasetIterator, state: bytes) -> None:
    """Moves `iterator` (built from the same spec and arguments) to a saved position."""
    iterator.set_state(json.loads(state.decode("utf-8")))
