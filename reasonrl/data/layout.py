"""Logical data shards: a global batch that does not depend on how many processes build it.

The B rows of every global batch are split into S *logical data shards* (S divides B) of
R = B / S consecutive rows each:

    global row j of step k  =  row (k * R + j % R) of logical shard s = j // R

Logical shard s is one deterministic stream of its own: the records s, s + S, s + 2S, ... of
the source (`indexed_records` with shard_index=s, shard_count=S), shuffled by its own seed
(`shard_seed`: the train seed for shard 0), tokenised and packed by its own packer, R rows a
step. Nothing in it depends on the process count, so 1 process building all S shards and P
processes each building the S / P shards whose rows their devices hold give the same global
batch.

A process passes the global rows it holds (`rows`, ascending: the rows of the batch sharding its
devices address, see `reasonrl.train.engine.process_rows`); it builds only the logical shards
those rows cover, so it reads, tokenises and packs only their records. Its batches hold those
rows in ascending order, the order `jax.make_array_from_process_local_data` expects. A shard
whose rows are split between processes is refused (`DataLayoutError`, naming the config field).

The iterator state is keyed by logical shard:

    {"layout": {"batch_size": B, "num_shards": S}, "shards": {"<s>": <shard s's grain state>}}

A process's `get_state()` holds its own shards; `merge_shard_states` joins every process's into
the state of the whole batch (what a checkpoint stores), and `set_state` takes from such a state
the shards this process owns: a checkpoint written by P processes restores in any process count.
A state from before logical shards (one stream packed into the whole batch, no "shards" key) is
that of the single shard of S = 1 and restores only with S = 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grain
import numpy as np

from reasonrl.data.pipeline import _batched_rows, _build, _check_sizes
from reasonrl.data.spec import SpecError
from reasonrl.data.tokenizer.base import Tokenizer
from reasonrl.errors import ReasonRLError


class DataLayoutError(ReasonRLError, ValueError):
    """The logical data shards do not fit the batch, the processes' rows or a saved state."""


@dataclasses.dataclass(frozen=True)
class ShardLayout:
    """`num_shards` logical data shards of `batch_size // num_shards` consecutive global rows.

    Attributes:
      batch_size: rows of the global batch (B).
      num_shards: logical data shards (S); must divide B.
      field: the config field that sets S, named in errors (e.g. "stages.sft.train.data_shards").
    """

    batch_size: int
    num_shards: int
    field: str = "data_shards"

    def __post_init__(self):
        if self.num_shards < 1 or self.batch_size % self.num_shards:
            raise DataLayoutError(
                f"{self.field}: {self.num_shards} logical data shards do not divide the "
                f"global batch of {self.batch_size} rows"
            )

    @property
    def rows_per_shard(self) -> int:
        """R: rows each logical shard gives every step."""
        return self.batch_size // self.num_shards

    def shard_rows(self, shard: int) -> range:
        """The global batch rows of logical shard `shard`."""
        return range(shard * self.rows_per_shard, (shard + 1) * self.rows_per_shard)

    def owned_shards(self, rows: Iterable[int]) -> tuple[int, ...]:
        """The logical shards that make up exactly the global `rows` (ascending shards).

        Raises:
          DataLayoutError: when a row is outside the batch or a shard is only partly in `rows`
            (its rows would be split between processes).
        """
        rows = sorted(set(rows))
        if not rows or rows[0] < 0 or rows[-1] >= self.batch_size:
            raise DataLayoutError(
                f"rows {rows[:4]}... are not rows of the global batch of {self.batch_size}"
            )
        shards = sorted({row // self.rows_per_shard for row in rows})
        covered = [row for shard in shards for row in self.shard_rows(shard)]
        if covered != rows:
            partial = next(s for s in shards if not set(self.shard_rows(s)) <= set(rows))
            span = self.shard_rows(partial)
            raise DataLayoutError(
                f"{self.field}: logical data shard {partial} (global batch rows "
                f"{span.start}..{span.stop - 1}) is split between processes: this process "
                f"holds {len(rows)} of the {self.batch_size} rows; set {self.field} to a "
                f"multiple of the process count that divides the batch size (0: one shard per "
                f"row, which always fits)"
            )
        return tuple(shards)

    def to_json(self) -> dict[str, int]:
        return {"batch_size": self.batch_size, "num_shards": self.num_shards}


SHARD_SEED_STRIDE = 0x9E3779B1  # odd, ~2^32 / golden ratio: shard seeds far apart


def shard_seed(seed: int, shard: int) -> int:
    """The seed of logical shard `shard` (shuffle, random tasks, first-fit bins): `seed` for
    shard 0, so that one shard is exactly the single-stream pipeline of `seed`. Shard seeds are
    spread by a large odd stride, not consecutive: grain reshuffles epoch e with seed + e, so
    consecutive shard seeds would replay each other's orders one epoch later (and runs with
    seeds t and t + 1 would share most shard seeds)."""
    return (seed + shard * SHARD_SEED_STRIDE) % 2**32


class ShardedBatchIterator:
    """This process's rows of every global batch: its logical shards' R-row batches, in
    ascending shard order, concatenated (see the module docstring).

    Yields dicts of arrays [n * R, ...] (n: owned shards; fields as `make_pipeline`'s). Shards
    are advanced by up to `threads` threads at once (each shard by one thread at a time, so
    every shard's state stays exact).
    """

    def __init__(
        self,
        layout: ShardLayout,
        shards: dict[int, grain.DatasetIterator],
        *,
        threads: int = 0,
    ):
        self.layout = layout
        self.shards = dict(sorted(shards.items()))
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="reasonrl-shards")
            if threads > 0 and len(self.shards) > 1
            else None
        )

    @property
    def rows(self) -> tuple[int, ...]:
        """The global batch rows this iterator gives, in the order it gives them."""
        return tuple(row for shard in self.shards for row in self.layout.shard_rows(shard))

    def __iter__(self) -> ShardedBatchIterator:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        iterators = list(self.shards.values())
        if self._pool is None:
            parts = [next(iterator) for iterator in iterators]
        else:
            parts = list(self._pool.map(next, iterators))
        if len(parts) == 1:
            return parts[0]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def get_state(self) -> dict[str, Any]:
        """{"layout": ..., "shards": {"<s>": state}} of this process's shards (JSON-native)."""
        return {
            "layout": self.layout.to_json(),
            "shards": {str(shard): it.get_state() for shard, it in self.shards.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Moves every owned shard to its position in `state` (any process count's state, or
        a merged one holding every shard).

        Raises:
          DataLayoutError: when `state` has another layout, lacks an owned shard, or is a
            single-stream state (from before logical shards) while S > 1.
        """
        field = self.layout.field
        if "shards" not in state:
            if self.layout.num_shards != 1:
                raise DataLayoutError(
                    f"{field}: the saved data iterator state is a single stream (written before "
                    f"logical data shards), but this run has {self.layout.num_shards} shards; "
                    f"set {field}=1 to continue it in one process, or start the stage over"
                )
            self.shards[0].set_state(state)
            return
        saved = state.get("layout", {})
        if saved != self.layout.to_json():
            raise DataLayoutError(
                f"{field}: the saved data iterator state has {saved.get('num_shards')} logical "
                f"data shards over a batch of {saved.get('batch_size')} rows, this run "
                f"{self.layout.num_shards} over {self.layout.batch_size}; set {field} (and "
                f"train.batch_size) as the checkpoint was written, or start the stage over"
            )
        missing = [shard for shard in self.shards if str(shard) not in state["shards"]]
        if missing:
            raise DataLayoutError(
                f"the saved data iterator state lacks logical data shards {missing} (it holds "
                f"{sorted(int(s) for s in state['shards'])}): it was not merged from every "
                f"process"
            )
        for shard, iterator in self.shards.items():
            iterator.set_state(state["shards"][str(shard)])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def merge_shard_states(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One state holding every process's shards (processes holding the same rows, replicas,
    hold equal states: the first is kept).

    Raises:
      DataLayoutError: when the states have different layouts.
    """
    layouts = {repr(state["layout"]) for state in states}
    if len(layouts) != 1:
        raise DataLayoutError(f"data iterator states of different layouts: {sorted(layouts)}")
    shards: dict[str, Any] = {}
    for state in states:
        for shard, value in state["shards"].items():
            shards.setdefault(shard, value)
    return {
        "layout": states[0]["layout"],
        "shards": dict(sorted(shards.items(), key=lambda item: int(item[0]))),
    }


def _require_records(source: Any, num_shards: int, field: str, where: str) -> None:
    """Raises SpecError when `source` has fewer records than `num_shards` (a shard would be
    empty)."""
    if len(source) < num_shards:
        raise SpecError(
            f"{field}: {num_shards} logical data shards but {where}.source holds only "
            f"{len(source)} records; set {field} to at most {len(source)} (it must divide "
            f"train.batch_size)"
        )


def check_sharded_spec(
    spec: Any, tokenizer: Tokenizer, num_shards: int, *, field: str, where: str = "spec"
) -> None:
    """Preflight: `check_spec` (every part builds, the first record becomes features) plus a
    record for each of the `num_shards` logical shards, building the source once.

    Raises:
      SpecError: as `check_spec`, or naming `field` when the source has fewer records than
        `num_shards`.
      MissingSpecialTokenError, MalformedRecordError: as `check_spec`.
    """
    _, source, task, _, _ = _build(spec, tokenizer, where)
    task.check_first_record()
    _require_records(source, num_shards, field, where)


def make_sharded_pipeline(
    spec: Any,
    tokenizer: Tokenizer,
    *,
    batch_size: int,
    seq_len: int,
    num_shards: int,
    rows: Iterable[int] | None = None,
    seed: int = 0,
    field: str = "data_shards",
    where: str = "spec",
) -> ShardedBatchIterator:
    """Validates `spec` and returns this process's rows of every global batch.

    Args:
      spec: a data spec, see `reasonrl.data.pipeline`.
      tokenizer: tokenises records; its pad_id fills padding.
      batch_size: rows of the global batch (B), over all processes.
      seq_len: tokens per row (T).
      num_shards: logical data shards (S), dividing B.
      rows: the global rows this process holds (any order); None: all of them.
      seed: base seed in [0, 2**32); shard s uses `shard_seed(seed, s)`.
      field: the config field setting `num_shards`, named in layout errors.
      where: the dotted name of `spec` in errors.

    Returns:
      A `ShardedBatchIterator` of dicts of arrays [len(rows), T] (and [len(rows)] for the
      preference task's per-row fields), rows in ascending global order.

    Raises:
      DataLayoutError: S does not divide B, or a shard's rows are split between processes.
      SpecError, MissingSpecialTokenError: as `make_pipeline`; SpecError also when the source
        has fewer records than S.
    """
    _check_sizes(batch_size, seq_len, seed)
    layout = ShardLayout(batch_size, num_shards, field)
    owned = layout.owned_shards(range(batch_size) if rows is None else rows)
    built = _build(spec, tokenizer, where, seq_len)
    config, source = built[0], built[1]
    _require_records(source, num_shards, field, where)
    # One shard: it reads ahead on its own threads. Several: they are read on demand, up to
    # read_threads shards at once (threads per process stay read_threads, whatever S is).
    per_shard_threads = config.read_threads if len(owned) == 1 else 0
    shards = {
        shard: iter(
            _batched_rows(
                built,
                tokenizer,
                batch_size=layout.rows_per_shard,
                seq_len=seq_len,
                seed=shard_seed(seed, shard),
                shard_index=shard,
                shard_count=num_shards,
                read_threads=per_shard_threads,
                where=where,
            )
        )
        for shard in owned
    }
    return ShardedBatchIterator(layout, shards, threads=config.read_threads)
