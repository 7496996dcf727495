"""The `preference` task with the `pair` packer: one preference pair per batch row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reasonrl.data import (
    PAIR_ROW_FEATURES,
    SftTask,
    SpecError,
    iterator_state_to_bytes,
    make_pipeline,
    restore_iterator_state,
)
from reasonrl.data.tasks import PreferenceTask
from tests.data.helpers import concat_batches

NUM_PAIRS = 24
SEQ_LEN = 32


def _pair(i: int) -> dict:
    # Varied lengths on both sides; rejected sometimes longer, sometimes shorter.
    return {
        "prompt": f"{i}+{i % 7}=",
        "chosen": f"{i + i % 7}",
        "rejected": f"{i + i % 7 + 1}" + "9" * (i % 4),
    }


@pytest.fixture(scope="module")
def pairs_jsonl(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(_pair(i)) + "\n" for i in range(NUM_PAIRS)))
    return str(path)


def _spec(path: str, **overrides) -> dict:
    spec = {
        "source": {"type": "jsonl", "path": path},
        "task": {"type": "preference", "chat_template": "chatml"},
        "num_epochs": 1,
        "read_threads": 0,
    }
    spec.update(overrides)
    return spec


def _rows(spec, tokenizer, seq_len=SEQ_LEN, batch_size=4, seed=0) -> dict:
    return concat_batches(
        list(
            make_pipeline(
                spec,
                tokenizer,
                batch_size=batch_size,
                seq_len=seq_len,
                seed=seed,
                shard_index=0,
                shard_count=1,
            )
        )
    )


def _sft_document(tokenizer, prompt: str, response: str) -> dict:
    """The same conversation through the sft task: what each side must equal."""
    task = SftTask(
        SftTask.Config(chat_template="chatml", prompt_field="p", response_field="r"), tokenizer
    )
    return task({"p": prompt, "r": response})


def _prompt_of(rows, r: int, tokenizer) -> str:
    text = tokenizer.decode(rows["chosen_tokens"][r][rows["chosen_segment_ids"][r] > 0].tolist())
    return text.split("user\n", 1)[1].split("<|im_end|>", 1)[0]


def test_rows_hold_both_sides_with_the_declared_fields(pairs_jsonl, sp_tokenizer):
    batch = next(
        make_pipeline(
            _spec(pairs_jsonl),
            sp_tokenizer,
            batch_size=4,
            seq_len=SEQ_LEN,
            seed=0,
            shard_index=0,
            shard_count=1,
        )
    )
    assert set(batch) == set(PAIR_ROW_FEATURES)
    for side in ("chosen", "rejected"):
        for key in ("tokens", "targets", "positions", "segment_ids", "loss_mask"):
            assert batch[f"{side}_{key}"].shape == (4, SEQ_LEN), key
            assert batch[f"{side}_{key}"].dtype == np.int32, key
        assert batch[f"{side}_last_index"].shape == (4,)
        assert batch[f"{side}_last_index"].dtype == np.int32
    assert batch["pair_mask"].dtype == np.float32 and batch["pair_mask"].shape == (4,)
    np.testing.assert_array_equal(batch["pair_mask"], 1.0)


def test_each_side_is_the_sft_rendering_padded(pairs_jsonl, sp_tokenizer):
    """Tokens, targets and the response-only loss mask match the sft task's document exactly;
    positions count from 0, segment id 1 on real tokens, padding after last_index."""
    rows = _rows(_spec(pairs_jsonl, shuffle=False), sp_tokenizer)
    pad = sp_tokenizer.pad_id
    assert rows["chosen_tokens"].shape[0] == NUM_PAIRS
    for r in range(NUM_PAIRS):
        record = _pair(r)  # shuffle=False: row r is record r
        assert _prompt_of(rows, r, sp_tokenizer) == record["prompt"]
        for side in ("chosen", "rejected"):
            expected = _sft_document(sp_tokenizer, record["prompt"], record[side])
            length = len(expected["tokens"])
            assert length <= SEQ_LEN
            assert rows[f"{side}_last_index"][r] == length - 1
            for key in ("tokens", "targets", "loss_mask"):
                np.testing.assert_array_equal(rows[f"{side}_{key}"][r][:length], expected[key])
            np.testing.assert_array_equal(rows[f"{side}_tokens"][r][length:], pad)
            np.testing.assert_array_equal(rows[f"{side}_targets"][r][length:], pad)
            np.testing.assert_array_equal(rows[f"{side}_loss_mask"][r][length:], 0)
            np.testing.assert_array_equal(
                rows[f"{side}_positions"][r],
                np.where(np.arange(SEQ_LEN) < length, np.arange(SEQ_LEN), 0),
            )
            np.testing.assert_array_equal(
                rows[f"{side}_segment_ids"][r], (np.arange(SEQ_LEN) < length).astype(np.int32)
            )
            # The loss mask marks exactly the response and its end-of-turn token.
            scored = rows[f"{side}_targets"][r][rows[f"{side}_loss_mask"][r] > 0]
            assert sp_tokenizer.decode(scored.tolist()) == record[side] + "<|im_end|>"


def test_overlong_pairs_truncate_from_the_end_or_drop(pairs_jsonl, sp_tokenizer):
    lengths = {
        side: [
            len(_sft_document(sp_tokenizer, p["prompt"], p[side])["tokens"])
            for p in map(_pair, range(NUM_PAIRS))
        ]
        for side in ("chosen", "rejected")
    }
    # Cut inside some responses (prompt part is 17 tokens with this tokenizer's pieces or more).
    seq_len = max(lengths["chosen"]) - 1
    longest = np.maximum(lengths["chosen"], lengths["rejected"])
    assert 0 < (longest > seq_len).sum() < NUM_PAIRS

    truncated = _rows(_spec(pairs_jsonl, shuffle=False), sp_tokenizer, seq_len=seq_len)
    assert truncated["chosen_tokens"].shape == (NUM_PAIRS, seq_len)
    for r in range(NUM_PAIRS):
        for side in ("chosen", "rejected"):
            full = _sft_document(sp_tokenizer, _pair(r)["prompt"], _pair(r)[side])
            keep = min(len(full["tokens"]), seq_len)
            np.testing.assert_array_equal(
                truncated[f"{side}_tokens"][r][:keep], full["tokens"][:keep]
            )  # the start is kept
            assert truncated[f"{side}_last_index"][r] == keep - 1
    # A response cut away entirely gives a row that counts for nothing.
    prompt_only = _rows(_spec(pairs_jsonl, shuffle=False), sp_tokenizer, seq_len=8)
    np.testing.assert_array_equal(prompt_only["pair_mask"], 0.0)

    dropped = _rows(
        _spec(pairs_jsonl, shuffle=False, packing={"type": "pair", "overlong": "drop"}),
        sp_tokenizer,
        seq_len=seq_len,
        batch_size=1,
    )
    kept = [r for r in range(NUM_PAIRS) if longest[r] <= seq_len]
    assert [_prompt_of(dropped, i, sp_tokenizer) for i in range(len(kept))] == [
        _pair(r)["prompt"] for r in kept
    ]


@pytest.mark.parametrize(
    "line, problem",
    [
        ({"prompt": "1+1=", "chosen": "2"}, "record has no field 'rejected'"),
        ({"prompt": "1+1=", "chosen": 2, "rejected": "3"}, "field 'chosen' must be a string"),
    ],
)
def test_malformed_record_names_file_and_line(tmp_path, sp_tokenizer, line, problem):
    path = tmp_path / "bad.jsonl"
    good = [json.dumps(_pair(i)) for i in range(3)]
    # A blank line before the bad record: the line number is the file's, not the record index.
    path.write_text("\n".join([*good, "", json.dumps(line), *good]) + "\n")
    batches = make_pipeline(
        _spec(str(path), shuffle=False),
        sp_tokenizer,
        batch_size=1,
        seq_len=SEQ_LEN,
        seed=0,
        shard_index=0,
        shard_count=1,
    )
    with pytest.raises((KeyError, ValueError), match=rf"{path}:5: .*{problem}"):
        list(batches)


def test_broken_json_names_file_and_line(tmp_path, sp_tokenizer):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(_pair(0)) + "\n" + '{"prompt": "1+1=", "chosen"\n')
    with pytest.raises(ValueError, match=rf"{path}:2: malformed JSON line"):
        make_pipeline(_spec(str(path)), sp_tokenizer, batch_size=1, seq_len=SEQ_LEN)


def test_packing_must_fit_the_task(pairs_jsonl, sp_tokenizer):
    with pytest.raises(
        SpecError,
        match=r"spec.packing.type: 'first_fit' packs documents but "
        r"task 'preference' yields pairs; use one of \['pair'\]",
    ):
        make_pipeline(
            _spec(pairs_jsonl, packing={"type": "first_fit"}),
            sp_tokenizer,
            batch_size=1,
            seq_len=SEQ_LEN,
            shard_index=0,
            shard_count=1,
        )
    sft = _spec(
        pairs_jsonl,
        task={"type": "sft", "prompt_field": "prompt", "response_field": "chosen"},
        packing={"type": "pair"},
    )
    with pytest.raises(SpecError, match="'pair' packs pairs but task 'sft' yields documents"):
        make_pipeline(
            sft, sp_tokenizer, batch_size=1, seq_len=SEQ_LEN, shard_index=0, shard_count=1
        )
    with pytest.raises(SpecError, match=r"spec.task: unknown key\(s\) \['response_field'\]"):
        make_pipeline(
            _spec(pairs_jsonl, task={"type": "preference", "response_field": "x"}),
            sp_tokenizer,
            batch_size=1,
            seq_len=SEQ_LEN,
            shard_index=0,
            shard_count=1,
        )


def test_custom_fields_and_system_prompt(tmp_path, sp_tokenizer):
    path = tmp_path / "custom.jsonl"
    path.write_text(json.dumps({"q": "2+2=", "good": "4", "bad": "5"}) + "\n")
    spec = _spec(
        str(path),
        task={
            "type": "preference",
            "prompt_field": "q",
            "chosen_field": "good",
            "rejected_field": "bad",
            "system_prompt": "Add.",
        },
    )
    rows = _rows(spec, sp_tokenizer, seq_len=48, batch_size=1)
    task = PreferenceTask(PreferenceTask.Config(system_prompt="Add."), sp_tokenizer)
    features = task({"prompt": "2+2=", "chosen": "4", "rejected": "5"})
    for side, answer in (("chosen", "4"), ("rejected", "5")):
        length = len(features[f"{side}_tokens"])
        np.testing.assert_array_equal(
            rows[f"{side}_tokens"][0][:length], features[f"{side}_tokens"]
        )
        text = sp_tokenizer.decode(rows[f"{side}_tokens"][0][:length].tolist())
        assert text.startswith("<|im_start|>system\nAdd.<|im_end|>") and f"\n{answer}<|im" in text


def test_order_is_deterministic_and_shards_partition(pairs_jsonl, sp_tokenizer):
    spec = _spec(pairs_jsonl)
    prompts = lambda rows: [
        _prompt_of(rows, r, sp_tokenizer)  # noqa: E731
        for r in range(rows["chosen_tokens"].shape[0])
    ]
    first = _rows(spec, sp_tokenizer, seed=3)
    assert prompts(first) == prompts(_rows(spec, sp_tokenizer, seed=3))
    assert prompts(first) != prompts(_rows(spec, sp_tokenizer, seed=4))
    assert sorted(prompts(first)) == sorted(_pair(i)["prompt"] for i in range(NUM_PAIRS))
    shards = [
        concat_batches(
            list(
                make_pipeline(
                    spec,
                    sp_tokenizer,
                    batch_size=2,
                    seq_len=SEQ_LEN,
                    seed=3,
                    shard_index=k,
                    shard_count=2,
                )
            )
        )
        for k in range(2)
    ]
    together = prompts(shards[0]) + prompts(shards[1])
    assert sorted(together) == sorted(prompts(first)) and len(set(together)) == NUM_PAIRS


@pytest.mark.parametrize("skip", (1, 4, 7))
def test_iterator_state_restores_exactly(pairs_jsonl, sp_tokenizer, skip):
    spec = _spec(pairs_jsonl, num_epochs=2)

    def fresh():
        return make_pipeline(
            spec, sp_tokenizer, batch_size=3, seq_len=SEQ_LEN, seed=5, shard_index=0, shard_count=1
        )

    reference = list(fresh())
    iterator = fresh()
    for _ in range(skip):
        next(iterator)
    restored = fresh()
    restore_iterator_state(restored, iterator_state_to_bytes(iterator))
    continued = list(restored)
    assert len(continued) == len(reference) - skip
    for expected, got in zip(reference[skip:], continued):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
