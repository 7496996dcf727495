"""The spectrum data task: sequences, loss masks against a hand-written token-by-token reference
for each chat template (with and without a description), permutation determinism, truncation at
sample boundaries, JSON outputs, and path:line errors for malformed records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reasonrl.data import MalformedRecordError, get_chat_template, make_pipeline
from reasonrl.data.pipeline import check_spec
from reasonrl.data.spectrum_format import (
    CHAT_ROLES,
    SpectrumSample,
    parse_samples,
    prompt_ids,
    render_spectrum,
)
from reasonrl.data.tasks import SpectrumTask

DESCRIPTION = "Name a fruit: apple 50%, pear 30%, plum 20%."
SAMPLES = [
    SpectrumSample(output="apple"),
    SpectrumSample(output="pear", input="a snack"),
    SpectrumSample(output='{"fruit": "plum", "color": "red"}'),
]


def reference(template: str, tokenizer, description, samples, first_trained):
    """(ids, mask) written out piece by piece: each piece's ids and whether it is trained on."""
    pieces = []

    def special(token):
        return [tokenizer.special_token_id(token)]

    if template == "chatml":

        def turn(role, content, trained):
            pieces.append((special("<|im_start|>") + tokenizer.encode(f"{role}\n"), False))
            pieces.append((tokenizer.encode(content), trained))
            pieces.append((special("<|im_end|>"), trained))
            pieces.append((tokenizer.encode("\n"), False))

    elif template == "llama3":
        pieces.append((special("<|begin_of_text|>"), False))

        def turn(role, content, trained):
            header = (
                special("<|start_header_id|>")
                + tokenizer.encode(role)
                + special("<|end_header_id|>")
                + tokenizer.encode("\n\n")
            )
            pieces.append((header, False))
            pieces.append((tokenizer.encode(content.strip()), trained))
            pieces.append((special("<|eot_id|>"), trained))

    else:
        if tokenizer.bos_id is not None:
            pieces.append(([tokenizer.bos_id], False))

        def turn(role, content, trained):
            if role == "output":
                pieces.append((tokenizer.encode(content) + [tokenizer.eos_id], trained))
            else:
                pieces.append((tokenizer.encode(content + "\n"), False))

    if description is not None:
        turn("description", description, False)
    for index, sample in enumerate(samples):
        if sample.input is not None:
            turn("input", sample.input, False)
        turn("output", sample.output, first_trained or index > 0)
    ids = [i for piece, _ in pieces for i in piece]
    mask = [trained for piece, trained in pieces for _ in piece]
    return np.asarray(ids), np.asarray(mask)


@pytest.mark.parametrize("template", ["chatml", "llama3", "plain"])
@pytest.mark.parametrize("described", [True, False])
def test_mask_matches_hand_written_reference(any_tokenizer, template, described):
    description = DESCRIPTION if described else None
    rendered = render_spectrum(get_chat_template(template), any_tokenizer, description, SAMPLES)
    ids, mask = reference(template, any_tokenizer, description, SAMPLES, first_trained=described)
    np.testing.assert_array_equal(rendered.token_ids, ids)
    np.testing.assert_array_equal(rendered.loss_mask, mask)
    assert rendered.num_samples == 3
    # Every output's tokens are numbered 0, 1, 2 (trained or not), nothing else is.
    everything = reference(template, any_tokenizer, description, SAMPLES, first_trained=True)[1]
    np.testing.assert_array_equal(rendered.output_index >= 0, everything)
    numbered = rendered.output_index[rendered.output_index >= 0]
    assert sorted(set(numbered.tolist())) == [0, 1, 2] and np.all(np.diff(numbered) >= 0)


def test_first_output_carries_loss_only_with_a_description(sp_tokenizer):
    template = get_chat_template("chatml")
    with_description = render_spectrum(template, sp_tokenizer, DESCRIPTION, SAMPLES)
    without = render_spectrum(template, sp_tokenizer, None, SAMPLES)
    assert with_description.loss_mask[with_description.output_index == 0].all()
    assert not without.loss_mask[without.output_index == 0].any()
    assert without.loss_mask[without.output_index == 1].all()
    forced = render_spectrum(template, sp_tokenizer, None, SAMPLES, train_first_output=True)
    assert forced.loss_mask[forced.output_index == 0].all()


def test_truncation_keeps_whole_samples(sp_tokenizer):
    template = get_chat_template("chatml")
    full = render_spectrum(template, sp_tokenizer, DESCRIPTION, SAMPLES)
    end_of_second = int(np.flatnonzero(full.output_index == 1)[-1]) + 2  # + the "\n" separator
    for limit in range(end_of_second, len(full.token_ids)):
        cut = render_spectrum(template, sp_tokenizer, DESCRIPTION, SAMPLES, max_tokens=limit)
        assert cut.num_samples == 2 and len(cut.token_ids) == end_of_second
        np.testing.assert_array_equal(cut.token_ids, full.token_ids[:end_of_second])
    tiny = render_spectrum(template, sp_tokenizer, DESCRIPTION, SAMPLES, max_tokens=5)
    assert len(tiny.token_ids) == 5 and tiny.num_samples == 1


def test_prompt_is_the_prefix_of_an_output(sp_tokenizer):
    template = get_chat_template("chatml")
    for roles_name, kwargs in (("spectrum", {}), ("chat", {"roles": CHAT_ROLES})):
        prompt = prompt_ids(template, sp_tokenizer, DESCRIPTION, "a snack", **kwargs)
        one = [SpectrumSample(output="pear", input="a snack")]
        full = render_spectrum(
            template, sp_tokenizer, DESCRIPTION, one, train_first_output=True, **kwargs
        )
        first_output = int(np.flatnonzero(full.output_index == 0)[0])
        assert full.token_ids[:first_output].tolist() == prompt, roles_name
    text = sp_tokenizer.decode(prompt)
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\n" in text


def test_non_string_values_are_json():
    samples = parse_samples([{"output": {"fruit": "plum", "n": 2}}, {"input": 3, "output": 4}])
    assert samples[0].output == '{"fruit": "plum", "n": 2}'
    assert samples[1] == SpectrumSample(output="4", input="3")


def _write_records(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def _records(count=40, samples=6):
    return [
        {
            "description": f"Task {i}: pick a letter.",
            "samples": [{"output": chr(97 + (i + j) % 26)} for j in range(samples)],
        }
        for i in range(count)
    ]


def _spec(path, **task):
    return {
        "source": {"type": "jsonl", "path": path},
        "task": {"type": "spectrum", "chat_template": "chatml", **task},
        "packing": {"type": "pad"},
        "read_threads": 0,
    }


def _batches(spec, tokenizer, count, seed=0, seq_len=96):
    iterator = make_pipeline(spec, tokenizer, batch_size=4, seq_len=seq_len, seed=seed)
    return [next(iterator) for _ in range(count)]


def test_pipeline_order_is_seeded_and_changes_per_epoch(tmp_path, sp_tokenizer):
    path = _write_records(tmp_path / "tasks.jsonl", _records())
    spec = _spec(path)
    first = _batches(spec, sp_tokenizer, 20)
    again = _batches(spec, sp_tokenizer, 20)
    other_seed = _batches(spec, sp_tokenizer, 20, seed=1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
    assert any(not np.array_equal(a["tokens"], b["tokens"]) for a, b in zip(first, other_seed))
    # One record seen in two epochs (10 batches of 4 rows = 40 records an epoch) is rendered
    # with another sample order or description choice at least once over many records.
    epoch_one = np.concatenate([b["tokens"] for b in first[:10]])
    epoch_two = np.concatenate([b["tokens"] for b in first[10:]])
    assert sorted(map(bytes, epoch_one)) != sorted(map(bytes, epoch_two))


def test_description_probability(tmp_path, sp_tokenizer):
    path = _write_records(tmp_path / "tasks.jsonl", _records(count=200, samples=2))
    start = sp_tokenizer.special_token_id("<|im_start|>")
    description_header = [start, *sp_tokenizer.encode("description\n")]

    def described_fraction(probability):
        spec = _spec(path, description_probability=probability)
        rows = np.concatenate([b["tokens"] for b in _batches(spec, sp_tokenizer, 50)])
        width = len(description_header)
        return np.mean([row[:width].tolist() == description_header for row in rows])

    assert described_fraction(0.0) == 0.0
    assert described_fraction(1.0) == 1.0
    assert 0.5 < described_fraction(0.6) < 0.7


def test_sequences_are_cut_at_sample_boundaries_to_seq_len(tmp_path, sp_tokenizer):
    path = _write_records(tmp_path / "tasks.jsonl", _records(count=8, samples=30))
    (batch,) = _batches(_spec(path, description_probability=1.0), sp_tokenizer, 1, seq_len=64)
    end = sp_tokenizer.special_token_id("<|im_end|>")
    newline = sp_tokenizer.encode("\n")
    for tokens, segments in zip(batch["tokens"], batch["segment_ids"]):
        real = tokens[segments > 0].tolist()
        assert len(real) <= 64
        assert real[-1 - len(newline)] == end and real[len(real) - len(newline) :] == newline


@pytest.mark.parametrize(
    "bad_record, message",
    [
        ({"description": "d", "samples": "abc"}, "samples must be a non-empty list"),
        ({"description": "d", "samples": [{"input": "x"}]}, "sample 0 has no 'output' field"),
        ({"description": "d", "samples": [3]}, "sample 0 must be an object"),
        ({"description": "d"}, "record has no field 'samples'"),
        (
            {"samples": [{"output": "a"}], "description_probability": 2},
            "'description_probability' must be a number in [0, 1]",
        ),
        ({"description": "d", "samples": [{"output": None}]}, "sample 0 'output' is null"),
    ],
)
def test_malformed_records_name_file_and_line(tmp_path, sp_tokenizer, bad_record, message):
    records = _records(count=2)
    path = _write_records(tmp_path / "bad.jsonl", [*records, bad_record])
    spec = {**_spec(path), "shuffle": False, "num_epochs": 1, "drop_remainder": False}
    iterator = make_pipeline(spec, sp_tokenizer, batch_size=1, seq_len=96)
    with pytest.raises(MalformedRecordError) as raised:
        for _ in range(4):
            next(iterator)
    assert f"{path}:3" in str(raised.value) and message in str(raised.value)


def test_config_errors_name_the_field(tmp_path, sp_tokenizer):
    path = _write_records(tmp_path / "tasks.jsonl", _records(count=2))
    with pytest.raises(ValueError, match="description_probability: must be in"):
        check_spec(_spec(path, description_probability=1.5), sp_tokenizer)
    with pytest.raises(ValueError, match="chat_template"):
        check_spec(_spec(path, chat_template="gemma"), sp_tokenizer)
    assert SpectrumTask.RANDOM and SpectrumTask.LAYOUT == "document"
