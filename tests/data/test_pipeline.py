"""make_pipeline end to end: contract, shuffling, sharding, epochs, SFT masks, checkpoints."""

from __future__ import annotations

import itertools
import json
import re

import ml_collections
import numpy as np
import pytest

from reasonrl.data import (
    MissingSpecialTokenError,
    SpecError,
    iterator_state_to_bytes,
    make_pipeline,
    restore_iterator_state,
)
from tests.data.helpers import GSM8K_JSONL, GSM8K_TEXT, check_row_layout, concat_batches

NUM_RECORDS = 40
CHECKPOINT_SKIPS = (1, 3, 6, 13)  # Batches read before saving the iterator state.


@pytest.fixture(scope="module")
def numbered_jsonl(tmp_path_factory) -> str:
    """Records {"text", "question", "answer"} with distinct, varied-length texts."""
    path = tmp_path_factory.mktemp("numbered") / "records.jsonl"
    lines = []
    for i in range(NUM_RECORDS):
        words = " ".join(["apples"] * (i % 7) + ["and", "pears"] * (i % 3))
        lines.append(
            json.dumps(
                {
                    "text": f"Record {i}: Janet has {i} {words}.",
                    "question": f"Janet has {i} apples and buys {i % 5} more. How many now?",
                    "answer": f"She has {i}+{i % 5} = {i + i % 5} apples.\n#### {i + i % 5}",
                }
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def pretrain_spec(path: str, **overrides) -> dict:
    spec = {
        "source": {"type": "jsonl", "path": path},
        "task": {"type": "pretrain"},
        "num_epochs": 1,
        "read_threads": 2,
    }
    spec.update(overrides)
    return spec


def all_rows(iterator) -> dict:
    return concat_batches(list(iterator))


def record_ids_in_order(rows: dict, tokenizer) -> list[int]:
    """With pad packing, each row is one record; read its number back from the decoded text."""
    texts = [
        tokenizer.decode(row[segments > 0])
        for row, segments in zip(rows["tokens"], rows["segment_ids"])
    ]
    return [int(re.search(r"Record (\d+):", text).group(1)) for text in texts]


def test_pretrain_batches_follow_the_contract(sp_tokenizer):
    spec = {
        "source": {"type": "text", "path": GSM8K_TEXT, "split": "blank_line"},
        "task": {"type": "pretrain"},
        "num_epochs": 1,
    }
    batches = make_pipeline(
        spec, sp_tokenizer, batch_size=4, seq_len=128, seed=0, shard_index=0, shard_count=1
    )
    batch = next(batches)
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
        key: ((4, 128), np.int32)
        for key in ("tokens", "targets", "loss_mask", "segment_ids", "positions")
    }
    check_row_layout(batch, sp_tokenizer.pad_id)


def test_pretrain_pipeline_keeps_every_document_whole(numbered_jsonl, any_tokenizer):
    """Shuffled, packed rows hold every document once, and no target crosses a document."""
    tokenizer = any_tokenizer
    spec = pretrain_spec(numbered_jsonl, task={"type": "pretrain", "add_eos": True})
    rows = all_rows(
        make_pipeline(
            dict(spec, drop_remainder=False),
            tokenizer,
            batch_size=2,
            seq_len=24,
            seed=7,
            shard_index=0,
            shard_count=1,
        )
    )
    check_row_layout(rows, tokenizer.pad_id)
    real = rows["segment_ids"] > 0
    stream = rows["tokens"][real]
    eos_at = np.flatnonzero(stream == tokenizer.eos_id)
    documents = np.split(stream, eos_at + 1)[:-1]
    expected = [
        tokenizer.encode(
            json.loads(line)["text"], add_bos=tokenizer.bos_id is not None, add_eos=True
        )
        for line in open(numbered_jsonl, encoding="utf-8")
    ]
    assert sorted(d.tolist() for d in documents) == sorted(expected)
    # Each predicted target is the next token of the stream, and never after an eos.
    predicted = rows["loss_mask"][real] == 1
    next_tokens = np.append(stream[1:], -1)
    np.testing.assert_array_equal(rows["targets"][real][predicted], next_tokens[predicted])
    assert not predicted[eos_at].any()


def test_shuffling_is_deterministic_by_seed(numbered_jsonl, sp_tokenizer):
    def order(seed, shuffle=True):
        spec = pretrain_spec(numbered_jsonl, packing={"type": "pad"}, shuffle=shuffle)
        rows = all_rows(
            make_pipeline(
                spec,
                sp_tokenizer,
                batch_size=4,
                seq_len=64,
                seed=seed,
                shard_index=0,
                shard_count=1,
            )
        )
        return record_ids_in_order(rows, sp_tokenizer)

    first = order(seed=1)
    assert sorted(first) == list(range(NUM_RECORDS))
    assert order(seed=1) == first
    assert order(seed=2) != first
    assert order(seed=1, shuffle=False) == list(range(NUM_RECORDS))


def test_epochs_repeat_with_a_new_order(numbered_jsonl, sp_tokenizer):
    spec = pretrain_spec(numbered_jsonl, packing={"type": "pad"}, num_epochs=2)
    rows = all_rows(
        make_pipeline(
            spec, sp_tokenizer, batch_size=4, seq_len=64, seed=3, shard_index=0, shard_count=1
        )
    )
    ids = record_ids_in_order(rows, sp_tokenizer)
    assert len(ids) == 2 * NUM_RECORDS
    assert sorted(ids[:NUM_RECORDS]) == sorted(ids[NUM_RECORDS:]) == list(range(NUM_RECORDS))
    assert ids[:NUM_RECORDS] != ids[NUM_RECORDS:]

    forever = make_pipeline(
        dict(spec, num_epochs=None),
        sp_tokenizer,
        batch_size=4,
        seq_len=64,
        seed=3,
        shard_index=0,
        shard_count=1,
    )
    assert len(list(itertools.islice(forever, 3 * NUM_RECORDS // 4))) == 3 * NUM_RECORDS // 4


def test_shards_are_disjoint_and_cover_the_data(numbered_jsonl, sp_tokenizer):
    spec = pretrain_spec(numbered_jsonl, packing={"type": "pad"}, drop_remainder=False)
    shards = []
    for shard_index in range(3):
        rows = all_rows(
            make_pipeline(
                spec,
                sp_tokenizer,
                batch_size=4,
                seq_len=64,
                seed=5,
                shard_index=shard_index,
                shard_count=3,
            )
        )
        shards.append(set(record_ids_in_order(rows, sp_tokenizer)))
    assert all(a.isdisjoint(b) for a, b in itertools.combinations(shards, 2))
    assert set().union(*shards) == set(range(NUM_RECORDS))
    assert sorted(len(s) for s in shards) == [13, 13, 14]


def test_default_shard_is_the_jax_process(numbered_jsonl, sp_tokenizer):
    spec = pretrain_spec(numbered_jsonl, packing={"type": "pad"})
    default = all_rows(make_pipeline(spec, sp_tokenizer, batch_size=4, seq_len=64, seed=0))
    explicit = all_rows(
        make_pipeline(
            spec, sp_tokenizer, batch_size=4, seq_len=64, seed=0, shard_index=0, shard_count=1
        )
    )
    np.testing.assert_array_equal(default["tokens"], explicit["tokens"])


@pytest.mark.parametrize(
    "packing",
    [{"type": "concat_then_split"}, {"type": "first_fit", "num_bins": 3}, {"type": "pad"}],
    ids=lambda packing: packing["type"],
)
@pytest.mark.parametrize("skip", CHECKPOINT_SKIPS)
def test_restoring_state_mid_epoch_continues_identically(
    numbered_jsonl, sp_tokenizer, packing, skip
):
    spec = pretrain_spec(numbered_jsonl, packing=packing, num_epochs=2)

    def fresh():
        return make_pipeline(
            spec, sp_tokenizer, batch_size=2, seq_len=20, seed=11, shard_index=0, shard_count=1
        )

    reference = list(fresh())
    assert len(reference) > skip + 3
    iterator = fresh()
    for _ in range(skip):
        next(iterator)
    saved = iterator_state_to_bytes(iterator)
    assert isinstance(saved, bytes)
    restored = fresh()
    restore_iterator_state(restored, saved)
    continued = list(restored)
    assert len(continued) == len(reference) - skip
    for expected, got in zip(reference[skip:], continued):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_concat_then_split_state_can_point_inside_a_document(numbered_jsonl, sp_tokenizer):
    """The checkpoint test above must save at least once inside a document split across rows."""
    spec = pretrain_spec(numbered_jsonl, num_epochs=2)
    iterator = make_pipeline(
        spec, sp_tokenizer, batch_size=2, seq_len=20, seed=11, shard_index=0, shard_count=1
    )
    offsets = {}
    for batches_read in range(1, 14):
        next(iterator)
        state = json.loads(iterator_state_to_bytes(iterator))
        offsets[batches_read] = state["document_offset"]
    assert any(offsets[skip] > 0 for skip in CHECKPOINT_SKIPS)


@pytest.mark.parametrize(
    "template, end_of_turn", [("chatml", "<|im_end|>"), ("llama3", "<|eot_id|>")]
)
@pytest.mark.parametrize(
    "packing",
    [{"type": "pad"}, {"type": "first_fit", "num_bins": 4}],
    ids=lambda packing: packing["type"],
)
def test_sft_loss_mask_is_response_only(
    numbered_jsonl, any_tokenizer, template, end_of_turn, packing
):
    tokenizer = any_tokenizer
    spec = pretrain_spec(
        numbered_jsonl,
        task={
            "type": "sft",
            "chat_template": template,
            "prompt_field": "question",
            "response_field": "answer",
            "system_prompt": "Solve it.",
        },
        packing=packing,
        drop_remainder=False,
    )
    rows = all_rows(
        make_pipeline(
            spec, tokenizer, batch_size=4, seq_len=160, seed=0, shard_index=0, shard_count=1
        )
    )
    pieces = check_row_layout(rows, tokenizer.pad_id)
    assert len(pieces) == NUM_RECORDS
    eot = tokenizer.special_token_id(end_of_turn)
    answers = {}
    for line in open(numbered_jsonl, encoding="utf-8"):
        record = json.loads(line)
        response = record["answer"].strip() if template == "llama3" else record["answer"]
        answers[record["question"]] = tokenizer.encode(response) + [eot]
    for piece in pieces:
        text = tokenizer.decode(piece["tokens"])
        question = next(q for q in answers if q in text)
        trained_on = piece["targets"][piece["loss_mask"] == 1].tolist()
        assert trained_on == answers[question]
        # The trained targets are one contiguous run that ends the document's turn.
        mask = piece["loss_mask"]
        assert np.count_nonzero(np.diff(mask)) == 2 and mask[-1] == 0


def test_spec_accepts_config_dict(numbered_jsonl, sp_tokenizer):
    spec = ml_collections.ConfigDict(pretrain_spec(numbered_jsonl, packing={"type": "pad"}))
    batch = next(
        make_pipeline(
            spec, sp_tokenizer, batch_size=2, seq_len=32, seed=0, shard_index=0, shard_count=1
        )
    )
    assert batch["tokens"].shape == (2, 32)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"shufle": True}, r"spec: unknown key\(s\) \['shufle'\]"),
        ({"task": {"type": "dpo"}}, r"spec.task.type: got 'dpo'"),
        ({"task": {"type": "pretrain", "field": "x"}}, r"spec.task: unknown key\(s\) \['field'\]"),
        ({"task": {"type": "sft", "prompt_field": "q"}}, r"spec.task.messages_field: give either"),
        (
            {"task": {"type": "sft", "chat_template": "alpaca", "messages_field": "m"}},
            r"spec.task.chat_template: got 'alpaca'",
        ),
        (
            {"source": {"type": "jsonl", "path": "/no/such/file.jsonl"}},
            r"spec.source.path: file not found: '/no/such/file.jsonl'",
        ),
        (
            {"packing": {"type": "first_fit", "num_bins": "8"}},
            r"spec.packing.num_bins: expected int, got '8'",
        ),
        ({"num_epochs": 0}, r"spec.num_epochs: must be >= 1 or None"),
        ({"packing": {"type": "first_fit", "num_bins": 0}}, r"spec.packing.num_bins: must be >= 1"),
    ],
)
def test_spec_errors_name_the_field(numbered_jsonl, sp_tokenizer, overrides, message):
    with pytest.raises(SpecError, match=message):
        make_pipeline(
            pretrain_spec(numbered_jsonl, **overrides),
            sp_tokenizer,
            batch_size=2,
            seq_len=32,
            seed=0,
            shard_index=0,
            shard_count=1,
        )


def test_missing_record_field_and_missing_template_tokens(numbered_jsonl, sp_tokenizer, tmp_path):
    spec = pretrain_spec(numbered_jsonl, task={"type": "pretrain", "text_field": "body"})
    batches = make_pipeline(
        spec, sp_tokenizer, batch_size=2, seq_len=32, seed=0, shard_index=0, shard_count=1
    )
    with pytest.raises(KeyError, match="record has no field 'body'.*spec.task.text_field"):
        next(batches)

    from tokenizers import Tokenizer, models

    Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")).save(str(tmp_path / "t.json"))
    from reasonrl.data import HFTokenizer

    bare = HFTokenizer(str(tmp_path / "t.json"))
    spec = pretrain_spec(
        GSM8K_JSONL, task={"type": "sft", "prompt_field": "question", "response_field": "answer"}
    )
    with pytest.raises(MissingSpecialTokenError, match=r"spec.task.chat_template: .*<\|im_start"):
        make_pipeline(spec, bare, batch_size=2, seq_len=32, seed=0, shard_index=0, shard_count=1)
    spec = pretrain_spec(
        GSM8K_JSONL, task={"type": "pretrain", "text_field": "question", "add_eos": True}
    )
    with pytest.raises(MissingSpecialTokenError, match=r"spec.task.add_eos: .* has no eos token"):
        make_pipeline(spec, bare, batch_size=2, seq_len=32, seed=0, shard_index=0, shard_count=1)
