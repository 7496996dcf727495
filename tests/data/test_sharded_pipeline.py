"""Logical data shards (reasonrl.data.layout): the global batch does not depend on how many
processes build it, a process reads only its shards' records, and the iterator state moves
between process counts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from reasonrl.data import (
    MissingFieldError,
    SpecError,
    iterator_state_to_bytes,
    make_pipeline,
    restore_iterator_state,
)
from reasonrl.data import pipeline as pipeline_lib
from reasonrl.data.layout import (
    DataLayoutError,
    ShardLayout,
    check_sharded_spec,
    make_sharded_pipeline,
    merge_shard_states,
)

NUM_RECORDS = 40
BATCH = 8
SEQ_LEN = 24
SEED = 9
STEPS = 5
FIELD = "stages.pretrain.train.data_shards"

PACKINGS = [{"type": "concat_then_split"}, {"type": "first_fit", "num_bins": 3}, {"type": "pad"}]
# (logical shards, the rows of each of the processes): contiguous halves, interleaved blocks
# (a mesh whose device order alternates processes), four processes, and two replicas.
LAYOUTS = [
    (8, [range(0, 4), range(4, 8)]),
    (4, [(0, 1, 4, 5), (2, 3, 6, 7)]),
    (4, [(0, 1), (2, 3), (4, 5), (6, 7)]),
    (2, [range(0, 8), range(0, 8)]),
]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> str:
    """Records {"text"}: "Record <i>: ..." of varied lengths."""
    path = tmp_path_factory.mktemp("sharded") / "records.jsonl"
    lines = [
        json.dumps({"text": f"Record {i}: Janet has {i} " + "apples and pears " * (i % 6)})
        for i in range(NUM_RECORDS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def spec(path: str, packing: dict, **overrides) -> dict:
    return {
        "source": {"type": "jsonl", "path": path},
        "task": {"type": "pretrain", "add_eos": True},
        "packing": packing,
        "read_threads": 2,
        **overrides,
    }


def pipeline(data_spec, tokenizer, num_shards, rows=None, batch_size=BATCH):
    return make_sharded_pipeline(
        data_spec,
        tokenizer,
        batch_size=batch_size,
        seq_len=SEQ_LEN,
        num_shards=num_shards,
        rows=rows,
        seed=SEED,
        field=FIELD,
    )


def assemble(processes, process_rows) -> dict:
    """One global batch from every process's next local batch, row j from its owner."""
    out = {}
    for iterator, rows in zip(processes, process_rows):
        local = next(iterator)
        assert list(iterator.rows) == sorted(rows)
        for key, value in local.items():
            assert len(value) == len(rows), key
            out.setdefault(key, np.zeros((BATCH, *value.shape[1:]), value.dtype))[sorted(rows)] = (
                value
            )
    return out


def assert_batches_equal(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.mark.parametrize("packing", PACKINGS, ids=lambda packing: packing["type"])
@pytest.mark.parametrize("num_shards, process_rows", LAYOUTS, ids=["8/2", "4/2x", "4/4", "2/rep"])
def test_processes_give_the_rows_of_the_one_process_batch(
    records, sp_tokenizer, packing, num_shards, process_rows
):
    data_spec = spec(records, packing)
    one = pipeline(data_spec, sp_tokenizer, num_shards)
    processes = [pipeline(data_spec, sp_tokenizer, num_shards, rows) for rows in process_rows]
    expected = [next(one) for _ in range(STEPS)]
    # Each row's tokens over the steps differ from every other row's (so that a row from the
    # wrong shard or place would show).
    streams = np.stack([batch["tokens"] for batch in expected], axis=1)  # [B, STEPS, T]
    assert len({stream.tobytes() for stream in streams}) == BATCH
    for batch in expected:
        assert_batches_equal(assemble(processes, process_rows), batch)


def test_one_shard_is_the_single_stream_pipeline(records, sp_tokenizer):
    data_spec = spec(records, {"type": "concat_then_split"})
    single = make_pipeline(
        data_spec, sp_tokenizer, batch_size=BATCH, seq_len=SEQ_LEN, seed=SEED, shard_count=1
    )
    sharded = pipeline(data_spec, sp_tokenizer, 1)
    for _ in range(STEPS):
        assert_batches_equal(next(sharded), next(single))


def test_a_process_reads_only_its_shards(records, sp_tokenizer, monkeypatch, tmp_path):
    """Process 0 of 2 (S = 8, rows 0..3) tokenises only records i with i % 8 in 0..3."""
    own = tmp_path / "own.jsonl"  # a file of its own: other tests' read-ahead threads may run
    own.write_bytes(open(records, "rb").read())
    seen: list[int] = []
    call = pipeline_lib.LocatedTask.__call__

    def spy(self, indexed, rng=None):
        if self._source.path == str(own):
            seen.append(indexed[0])
        return call(self, indexed, rng)

    monkeypatch.setattr(pipeline_lib.LocatedTask, "__call__", spy)
    iterator = pipeline(spec(str(own), {"type": "pad"}), sp_tokenizer, 8, rows=range(4))
    batches = [next(iterator) for _ in range(STEPS)]
    assert len(seen) >= STEPS * 4
    assert {index % 8 for index in seen} == {0, 1, 2, 3}
    texts = [
        sp_tokenizer.decode(row[segments > 0])
        for batch in batches
        for row, segments in zip(batch["tokens"], batch["segment_ids"])
    ]
    ids = [int(re.search(r"Record (\d+):", text).group(1)) for text in texts]
    # Row r of every batch comes from logical shard r: records r, r + 8, r + 16, ...
    assert [i % 8 for i in ids] == [0, 1, 2, 3] * STEPS


@pytest.mark.parametrize("packing", PACKINGS[:2], ids=lambda packing: packing["type"])
@pytest.mark.parametrize("skip", [1, 3])
def test_state_moves_between_process_counts(records, sp_tokenizer, packing, skip):
    data_spec = spec(records, packing)
    halves = [range(0, 4), range(4, 8)]
    reference = pipeline(data_spec, sp_tokenizer, 4)
    expected = [next(reference) for _ in range(skip + STEPS)]

    # 2 processes -> 1: their states, merged, continue the 1-process batches.
    two = [pipeline(data_spec, sp_tokenizer, 4, rows) for rows in halves]
    for step in range(skip):
        assert_batches_equal(assemble(two, halves), expected[step])
    states = [json.loads(iterator_state_to_bytes(iterator)) for iterator in two]
    assert [sorted(state["shards"]) for state in states] == [["0", "1"], ["2", "3"]]
    merged = json.dumps(merge_shard_states(states)).encode()
    one = pipeline(data_spec, sp_tokenizer, 4)
    restore_iterator_state(one, merged)
    for step in range(skip, skip + STEPS):
        assert_batches_equal(next(one), expected[step])

    # 1 process -> 2: each takes its own shards of the 1-process state, and 2 -> 2 as well.
    one = pipeline(data_spec, sp_tokenizer, 4)
    for _ in range(skip):
        next(one)
    for saved in (iterator_state_to_bytes(one), merged):
        restored = [pipeline(data_spec, sp_tokenizer, 4, rows) for rows in halves]
        for iterator in restored:
            restore_iterator_state(iterator, saved)
        for step in range(skip, skip + STEPS):
            assert_batches_equal(assemble(restored, halves), expected[step])


def test_a_single_stream_state_restores_with_one_shard_only(records, sp_tokenizer):
    data_spec = spec(records, {"type": "concat_then_split"})
    single = make_pipeline(
        data_spec, sp_tokenizer, batch_size=BATCH, seq_len=SEQ_LEN, seed=SEED, shard_count=1
    )
    next(single), next(single)
    saved = iterator_state_to_bytes(single)
    one_shard = pipeline(data_spec, sp_tokenizer, 1)
    restore_iterator_state(one_shard, saved)
    for _ in range(STEPS):
        assert_batches_equal(next(one_shard), next(single))
    with pytest.raises(DataLayoutError, match=rf"{re.escape(FIELD)}: .* single stream .*=1"):
        restore_iterator_state(pipeline(data_spec, sp_tokenizer, 8), saved)


def test_layout_errors_name_the_field(records, sp_tokenizer):
    data_spec = spec(records, {"type": "pad"})
    with pytest.raises(DataLayoutError, match=rf"{re.escape(FIELD)}: 3 logical data shards"):
        pipeline(data_spec, sp_tokenizer, 3)
    # 2 shards of 4 rows: a process holding rows 0..2 would split shard 0.
    with pytest.raises(DataLayoutError, match=rf"{re.escape(FIELD)}: logical data shard 0 "):
        pipeline(data_spec, sp_tokenizer, 2, rows=(0, 1, 2))
    with pytest.raises(DataLayoutError, match=r"shard 1 \(global batch rows 4\.\.7\)"):
        ShardLayout(8, 2, FIELD).owned_shards((0, 1, 2, 3, 4))
    assert ShardLayout(8, 2, FIELD).owned_shards((7, 6, 5, 4)) == (1,)

    saved = iterator_state_to_bytes(pipeline(data_spec, sp_tokenizer, 4))
    with pytest.raises(DataLayoutError, match=rf"{re.escape(FIELD)}: .* 4 logical data shards"):
        restore_iterator_state(pipeline(data_spec, sp_tokenizer, 8), saved)
    partial = json.loads(iterator_state_to_bytes(pipeline(data_spec, sp_tokenizer, 4, (0, 1))))
    with pytest.raises(DataLayoutError, match=r"lacks logical data shards \[1, 2, 3\]"):
        restore_iterator_state(pipeline(data_spec, sp_tokenizer, 4), json.dumps(partial).encode())


def test_more_shards_than_records_is_refused(records, sp_tokenizer):
    data_spec = spec(records, {"type": "pad"})
    many = 2 * NUM_RECORDS
    match = rf"{re.escape(FIELD)}: {many} logical data shards but spec\.source holds only 40"
    with pytest.raises(SpecError, match=match):
        pipeline(data_spec, sp_tokenizer, many, batch_size=many)
    with pytest.raises(SpecError, match=match):
        check_sharded_spec(data_spec, sp_tokenizer, many, field=FIELD)
    check_sharded_spec(data_spec, sp_tokenizer, NUM_RECORDS, field=FIELD)


def test_a_bad_record_in_a_shard_read_by_a_thread_names_its_line(records, sp_tokenizer, tmp_path):
    lines = open(records, encoding="utf-8").read().splitlines()
    lines[13] = json.dumps({"txt": "no text field"})  # record 13: logical shard 13 % 8 = 5
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    iterator = pipeline(spec(str(broken), {"type": "pad"}, shuffle=False), sp_tokenizer, 8)
    assert iterator._pool is not None  # several shards, read_threads=2: shards read by threads
    next(iterator)  # records 0..7
    with pytest.raises(MissingFieldError, match=rf"^{re.escape(str(broken))}:14: "):
        next(iterator)  # records 8..15


def record_ids(batch, tokenizer) -> list[list[int]]:
    """The "Record <i>" ids of every row's documents, row by row."""
    rows = []
    for tokens, segments in zip(batch["tokens"], batch["segment_ids"]):
        texts = [tokenizer.decode(tokens[segments == s]) for s in np.unique(segments[segments > 0])]
        rows.append([int(re.search(r"Record (\d+):", text).group(1)) for text in texts])
    return rows


def test_one_shard_per_row_packs_and_covers_records_as_one_stream(records, sp_tokenizer):
    """S = B (one first-fit shard per row, R = 1) against S = 1: every shard gives each of its
    own records equally often (no repeats, no early restart) over more than two of its epochs,
    and a step holds as many tokens and loss tokens, and as little padding, as the single
    stream's."""
    data_spec = spec(records, {"type": "first_fit", "num_bins": 3})
    steps = 24  # S = 8: 5 records a shard, 1-2 a row: > 2 epochs of every shard
    stats = {}
    for num_shards in (1, BATCH):
        iterator = pipeline(data_spec, sp_tokenizer, num_shards)
        batches = [next(iterator) for _ in range(steps)]
        real = np.array([(b["segment_ids"] > 0).sum() for b in batches])
        loss = np.array([b["loss_mask"].sum() for b in batches])
        stats[num_shards] = real.mean(), loss.mean(), 1 - real.mean() / (BATCH * SEQ_LEN)
        ids = [record_ids(batch, sp_tokenizer) for batch in batches]
        for shard in range(num_shards):
            stream = [i for step in ids for row in step[shard::num_shards] for i in row]
            own = range(shard, NUM_RECORDS, num_shards)
            counts = [stream.count(i) for i in own]
            assert set(stream) == set(own), (shard, stream)
            assert len(stream) > 2 * len(own) and max(counts) - min(counts) <= 1, (shard, counts)
    (tokens_1, loss_1, pad_1), (tokens_s, loss_s, pad_s) = stats[1], stats[BATCH]
    assert tokens_s == pytest.approx(tokens_1, rel=0.1)
    assert loss_s == pytest.approx(loss_1, rel=0.1)
    assert pad_s <= pad_1 + 0.05, (pad_s, pad_1)
