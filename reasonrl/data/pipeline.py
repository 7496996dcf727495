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

    MapDataset.source(records)[shard_index::shard_count]   # one shard's records
      .shuffle(seed)            # global, deterministic permutation; reseeded every epoch
      .repeat(num_epochs)       # None: forever
      .map(task)                # tokenise: record -> one document's features (random tasks:
                                # .random_map, with a Generator from the seed and element index)
      .to_iter_dataset(...)     # read_threads threads tokenise ahead
      -> packer                 # documents -> rows of seq_len tokens
      .batch(batch_size)        # this shard's rows of a step

`make_pipeline` is one such stream. Training across hosts uses `reasonrl.data.layout`
(`make_sharded_pipeline`): the global batch is split into a fixed number of logical data shards,
each one of these streams (shard s of S, its own seed), and a process builds only the shards
whose rows it holds, so the global batch does not depend on the process count.

Each batch is a dict of int32 [batch_size, seq_len] arrays: tokens, targets, loss_mask,
segment_ids, positions (meanings in packing.py). The `preference` task instead gives one pair
per row (packing "pair", its default): chosen_* / rejected_* [batch_size, seq_len] arrays,
chosen_last_index / rejected_last_index int32 [batch_size] and pair_mask float32 [batch_size]
(see packing.PairPacker).

A record that cannot be used raises a `MalformedRecordError` (`MissingFieldError` for a
missing field) naming its place first, "path:line: ...", when the iterator reaches it; see
`LocatedTask`. `check_spec` builds every part of a spec and tries its first record, for a job to
fail on a bad spec before anything trains. Errors name spec fields under `where` ("spec" unless
the caller says, e.g. "stages.sft.data").

The iterator is a grain DatasetIterator: `get_state()` is a JSON-native dict;
`iterator_state_to_bytes` / `restore_iterator_state` turn it into bytes and back. Restoring
continues with exactly the batches that would have followed the saved one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grain
import numpy as np

from reasonrl.data.packing import PACKERS
from reasonrl.data.sources.base import MalformedRecordError, MissingFieldError
from reasonrl.data.sources.jsonl import JsonlSource
from reasonrl.data.sources.registry import RecordSource, make_source
from reasonrl.data.spec import SpecError, parse_section, parse_typed_section
from reasonrl.data.tasks import TASK_TYPES
from reasonrl.data.tokenizer.base import Tokenizer
from reasonrl.errors import ReasonRLError


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
    """ "path:line" of record `index` of a JSON Lines source, else "<source> record <index>".

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
    """Applies a task to `(source index, record)`; an error the record causes names its place.

    The task's KeyError (a missing field) becomes a `MissingFieldError`, its ValueError or
    TypeError (a value of the wrong kind) a `MalformedRecordError`: "path:line: <its message>".
    This is the one place record errors are translated. grain re-raises an error of a map
    function unchanged (it only adds a note about the frames it hides from the traceback), so
    the error reaching the caller of `next(iterator)` is this one, message intact. Project
    errors (`ReasonRLError`) pass through as they are.
    """

    def __init__(self, task: Any, source: Any):
        self._task = task
        self._source = source
        self.random = bool(getattr(task, "RANDOM", False))

    def __call__(self, indexed: tuple[int, Any], rng: np.random.Generator | None = None) -> Any:
        """The task's features of one record; a random task (`RANDOM`) also gets `rng`."""
        index, record = indexed
        try:
            return self._task(record, rng) if self.random else self._task(record)
        except ReasonRLError:
            raise
        except (KeyError, ValueError, TypeError) as error:
            message = (
                error.args[0]
                if len(error.args) == 1 and isinstance(error.args[0], str)
                else str(error)
            )
            located = MissingFieldError if isinstance(error, KeyError) else MalformedRecordError
            raise located(_record_location(self._source, index), message) from error

    def check_first_record(self) -> None:
        """Runs the task on record 0, raising what reading the whole source would raise there."""
        self((0, self._source[0]), np.random.default_rng(0))


def default_shard(shard_index: int | None, shard_count: int | None) -> tuple[int, int]:
    """(shard_index, shard_count); unset values come from jax.process_index()/process_count()."""
    if shard_index is None or shard_count is None:
        import jax  # Imported lazily: only needed for the multi-host defaults.

        shard_index = jax.process_index() if shard_index is None else shard_index
        shard_count = jax.process_count() if shard_count is None else shard_count
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"need 0 <= shard_index < shard_count, got {shard_index}, {shard_count}")
    return shard_index, shard_count


def indexed_records(
    source: RecordSource,
    config: Any,
    *,
    seed: int,
    shard_index: int | None,
    shard_count: int | None,
    where: str = "spec",
) -> grain.MapDataset:
    """`(source index, record)` pairs of this host's shard of `source`, shuffled by `seed` (if
    `config.shuffle`) and repeated `config.num_epochs` times (forever when None)."""
    shard_index, shard_count = default_shard(shard_index, shard_count)
    records = grain.MapDataset.source(source).map_with_index(lambda index, record: (index, record))[
        shard_index::shard_count
    ]
    if len(records) == 0:
        raise SpecError(
            f"{where}.source: shard {shard_index} of {shard_count} holds no records "
            f"(the source has {len(source)})"
        )
    if config.shuffle:
        records = records.shuffle(seed)
    if config.num_epochs != 1:
        records = records.repeat(config.num_epochs)
    return records


def _build(
    spec: Any, tokenizer: Tokenizer, where: str, seq_len: int | None = None
) -> tuple[PipelineConfig, RecordSource, LocatedTask, Any, Any]:
    """(config, source, located task, packer class, packer config) of `spec`, all checked."""
    config = parse_section(PipelineConfig, spec, where)
    task_class, task_config = parse_typed_section(TASK_TYPES, config.task, f"{where}.task")
    layout = task_class.LAYOUT
    packing = DEFAULT_PACKING[layout] if config.packing is None else config.packing
    packer_class, packer_config = parse_typed_section(PACKERS, packing, f"{where}.packing")
    if packer_class.LAYOUT != layout:
        fitting = sorted(name for name, packer in PACKERS.items() if packer.LAYOUT == layout)
        raise SpecError(
            f"{where}.packing.type: {dict(packing).get('type')!r} packs {packer_class.LAYOUT}s "
            f"but task {dict(config.task).get('type')!r} yields {layout}s; use one of {fitting}"
        )
    source = make_source(config.source, f"{where}.source")
    task = task_class(task_config, tokenizer, where=f"{where}.task", seq_len=seq_len)
    return config, source, LocatedTask(task, source), packer_class, packer_config


def check_spec(spec: Any, tokenizer: Tokenizer, *, where: str = "spec") -> None:
    """Builds every part of `spec` and turns its first record into features, so that a bad
    option, a missing or empty file, a chat template the tokenizer cannot render or a first
    record that lacks a field fails now, before anything trains.

    Raises:
      SpecError, MissingSpecialTokenError: naming the field under `where`.
      MalformedRecordError (MissingFieldError): naming "path:line" of the first record.
    """
    _build(spec, tokenizer, where)[2].check_first_record()


def make_dataset(
    spec: Any,
    tokenizer: Tokenizer,
    *,
    batch_size: int,
    seq_len: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
    where: str = "spec",
) -> grain.IterDataset:
    """The grain IterDataset behind `make_pipeline` (same arguments)."""
    _check_sizes(batch_size, seq_len, seed)
    built = _build(spec, tokenizer, where, seq_len)
    return _batched_rows(
        built,
        tokenizer,
        batch_size=batch_size,
        seq_len=seq_len,
        seed=seed,
        shard_index=shard_index,
        shard_count=shard_count,
        read_threads=built[0].read_threads,
        where=where,
    )


def _check_sizes(batch_size: int, seq_len: int, seed: int) -> None:
    if batch_size < 1 or seq_len < 2:
        raise ValueError(f"need batch_size >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")


def _batched_rows(
    built: tuple[PipelineConfig, RecordSource, LocatedTask, Any, Any],
    tokenizer: Tokenizer,
    *,
    batch_size: int,
    seq_len: int,
    seed: int,
    shard_index: int | None,
    shard_count: int | None,
    read_threads: int,
    where: str,
) -> grain.IterDataset:
    """Records of one shard -> task -> packer -> batches of `batch_size` rows (see the module
    docstring), from the parts `_build` made; `read_threads` tokenise ahead (0: on demand)."""
    config, source, task, packer_class, packer_config = built
    records = indexed_records(
        source, config, seed=seed, shard_index=shard_index, shard_count=shard_count, where=where
    )
    records = records.random_map(task, seed=seed) if task.random else records.map(task)
    documents = records.to_iter_dataset(
        grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=config.read_buffer_size)
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
    where: str = "spec",
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
      where: the dotted name of `spec` in errors (e.g. "stages.sft.data").

    Returns:
      A grain DatasetIterator yielding dicts of int32 [B, T] arrays: tokens, targets, loss_mask,
      segment_ids, positions (for the preference task: the pair fields of
      packing.PairPacker, [B, T] and [B]).

    Raises:
      SpecError: naming the spec field at fault (unknown key, missing or empty file, bad value).
      MissingSpecialTokenError: when the chat template needs a token the tokenizer lacks.
      MalformedRecordError (MissingFieldError): from `next()`, naming "path:line" of a record
        the task cannot use (a missing field, a value of the wrong type).
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
            where=where,
        )
    )


def iterator_state_to_bytes(iterator: grain.DatasetIterator) -> bytes:
    """The iterator's position as UTF-8 JSON, to store next to a model checkpoint."""
    return json.dumps(iterator.get_state(), sort_keys=True).encode("utf-8")


def restore_iterator_state(iterator: grain.DatasetIterator, state: bytes) -> None:
    """Moves `iterator` (built from the same spec and arguments) to a saved position."""
    iterator.set_state(json.loads(state.decode("utf-8")))
