"""A bad record, file or spec is a project error (`ReasonRLError`) naming its place, wherever it
is found: when the pipeline is built, by `check_spec` before training, or by `next()` at record
500 in the middle of training (through grain's reading threads, message intact)."""

from __future__ import annotations

import json
import types

import pytest

from reasonrl import cli
from reasonrl.data import (
    JsonlSource,
    MalformedRecordError,
    MissingFieldError,
    MissingSpecialTokenError,
    SpecError,
    TextSource,
    check_spec,
    make_pipeline,
    train_sentencepiece,
)
from reasonrl.data.prompt_pipeline import check_prompt_spec, make_prompt_pipeline
from reasonrl.errors import ReasonRLError

NUM_RECORDS = 600
BAD_INDEX = 499  # record 500, on line 500 of the file
RL = types.SimpleNamespace(
    prompt_field="question", answer_field="answer", prompt_template="plain", chat_template="chatml"
)


def _jsonl(path, bad_record: dict | None = None) -> str:
    records = [
        {
            "question": f"What is {i}+1?",
            "answer": str(i + 1),
            "prompt": f"{i}+1=",
            "chosen": str(i + 1),
            "rejected": str(i),
        }
        for i in range(NUM_RECORDS)
    ]
    if bad_record is not None:
        records[BAD_INDEX] = bad_record
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def _sft_spec(path: str, read_threads: int = 2, **task) -> dict:
    task = {"type": "sft", "prompt_field": "question", "response_field": "answer", **task}
    return {
        "source": {"type": "jsonl", "path": path},
        "task": task,
        "shuffle": False,
        "num_epochs": 1,
        "read_threads": read_threads,
    }


def _read_all(iterator) -> int:
    batches = 0
    for _ in iterator:
        batches += 1
    return batches


def test_error_types_are_project_errors():
    for error_type in (
        SpecError,
        MalformedRecordError,
        MissingFieldError,
        MissingSpecialTokenError,
    ):
        assert issubclass(error_type, ReasonRLError)
    assert issubclass(MissingFieldError, KeyError)  # what a missing field always raised
    assert str(MissingFieldError("a.jsonl:3", "no field 'x'")) == "a.jsonl:3: no field 'x'"


@pytest.mark.parametrize("read_threads", [0, 2])
def test_missing_field_mid_training_names_file_line_and_field(tmp_path, sp_tokenizer, read_threads):
    path = _jsonl(tmp_path / "sft.jsonl", {"question": "What is 1+1?"})
    batches = make_pipeline(
        _sft_spec(path, read_threads),
        sp_tokenizer,
        batch_size=2,
        seq_len=64,
        shard_index=0,
        shard_count=1,
    )
    next(batches)  # the first records are fine
    with pytest.raises(MissingFieldError) as error:
        _read_all(batches)
    message = str(error.value)
    assert message.startswith(f"{path}:500: record has no field 'answer'")
    assert "set spec.task.response_field" in message
    assert cli.format_error(error.value) == f"error: {message}"  # one line, nothing added


def test_mid_training_error_names_the_field_under_the_callers_name(tmp_path, sp_tokenizer):
    path = _jsonl(tmp_path / "sft.jsonl", {"question": "What is 1+1?"})
    batches = make_pipeline(
        _sft_spec(path),
        sp_tokenizer,
        batch_size=2,
        seq_len=64,
        shard_index=0,
        shard_count=1,
        where="stages.sft.data",
    )
    with pytest.raises(MissingFieldError, match=r"set stages\.sft\.data\.task\.response_field"):
        _read_all(batches)


def test_wrong_value_mid_training_is_a_malformed_record(tmp_path, sp_tokenizer):
    path = _jsonl(tmp_path / "pairs.jsonl", {"prompt": "1+1=", "chosen": 2, "rejected": "3"})
    spec = {
        "source": {"type": "jsonl", "path": path},
        "task": {"type": "preference"},
        "shuffle": False,
        "num_epochs": 1,
        "read_threads": 2,
    }
    batches = make_pipeline(
        spec, sp_tokenizer, batch_size=2, seq_len=32, shard_index=0, shard_count=1
    )
    with pytest.raises(
        MalformedRecordError,
        match=rf"^{path}:500: field 'chosen' must be a "
        r"string",
    ):
        _read_all(batches)


def test_undecodable_text_mid_training_names_file_and_line(tmp_path, sp_tokenizer):
    path = tmp_path / "corpus.txt"
    lines = [f"document {i}".encode() for i in range(NUM_RECORDS)]
    lines[BAD_INDEX] = b"bad \xff byte"
    path.write_bytes(b"\n".join(lines) + b"\n")
    spec = {
        "source": {"type": "text", "path": str(path)},
        "task": {"type": "pretrain"},
        "shuffle": False,
        "num_epochs": 1,
        "read_threads": 2,
    }
    batches = make_pipeline(
        spec, sp_tokenizer, batch_size=2, seq_len=32, shard_index=0, shard_count=1
    )
    with pytest.raises(MalformedRecordError, match=rf"^{path}:500: invalid UTF-8"):
        _read_all(batches)


def test_missing_prompt_field_mid_training(tmp_path, sp_tokenizer):
    path = _jsonl(tmp_path / "prompts.jsonl", {"question": "What is 1+1?"})
    prompts = make_prompt_pipeline(
        {"source": {"type": "jsonl", "path": path}, "shuffle": False, "num_epochs": 1},
        RL,
        sp_tokenizer,
        batch_size=4,
        max_prompt_len=64,
        shard_index=0,
        shard_count=1,
        rl_where="stages.rl.rl",
    )
    next(prompts)
    with pytest.raises(
        MissingFieldError,
        match=rf"^{path}:500: record has no field 'answer'.*"
        r"set stages\.rl\.rl\.answer_field",
    ):
        _read_all(prompts)


def test_malformed_json_line_is_found_when_the_source_opens(tmp_path, sp_tokenizer):
    path = _jsonl(tmp_path / "broken.jsonl")
    lines = (tmp_path / "broken.jsonl").read_text().splitlines()
    lines[BAD_INDEX] = '{"question": "1+1=", "answer": '
    (tmp_path / "broken.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedRecordError, match=rf"{path}:500: malformed JSON line"):
        check_spec(_sft_spec(path), sp_tokenizer)


def test_check_spec_tries_the_first_record(tmp_path, sp_tokenizer):
    path = _jsonl(tmp_path / "sft.jsonl")
    check_spec(_sft_spec(path), sp_tokenizer)
    with pytest.raises(
        MissingFieldError,
        match=rf"^{path}:1: record has no field 'solution' "
        r".*set stages\.sft\.data\.task\.response_field",
    ):
        check_spec(
            _sft_spec(path, response_field="solution"), sp_tokenizer, where="stages.sft.data"
        )
    with pytest.raises(SpecError, match=r"^stages\.sft\.data\.source\.path: file not found"):
        check_spec(_sft_spec(str(tmp_path / "none.jsonl")), sp_tokenizer, where="stages.sft.data")


def test_check_prompt_spec_tries_the_first_record(tmp_path, sp_tokenizer):
    path = _jsonl(tmp_path / "prompts.jsonl")
    spec = {"source": {"type": "jsonl", "path": path}}
    check_prompt_spec(spec, RL, sp_tokenizer)
    with pytest.raises(
        MissingFieldError,
        match=rf"^{path}:1: record has no field 'problem'.*"
        r"set rl\.prompt_field",
    ):
        check_prompt_spec(
            spec, types.SimpleNamespace(**{**vars(RL), "prompt_field": "problem"}), sp_tokenizer
        )


@pytest.mark.parametrize("source_type", ["jsonl", "text"])
def test_empty_file_is_an_error_naming_it(tmp_path, sp_tokenizer, source_type):
    path = tmp_path / f"empty.{source_type}"
    path.write_text("")
    spec = {"source": {"type": source_type, "path": str(path)}, "task": {"type": "pretrain"}}
    with pytest.raises(SpecError, match=rf"^spec\.source\.path: file is empty: '{path}'"):
        make_pipeline(spec, sp_tokenizer, batch_size=2, seq_len=32, shard_index=0, shard_count=1)
    source_class = JsonlSource if source_type == "jsonl" else TextSource
    assert len(source_class(str(path))) == 0  # opening one directly does not fail to mmap


def test_file_of_blank_lines_has_no_records(tmp_path, sp_tokenizer):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n  \n\n")
    with pytest.raises(SpecError, match=rf"^spec\.source: no records in JsonlSource\('{path}'"):
        check_spec(
            {"source": {"type": "jsonl", "path": str(path)}, "task": {"type": "pretrain"}},
            sp_tokenizer,
        )


@pytest.mark.parametrize("text", ["", "\n \n\t\n"])
def test_tokenizer_corpus_without_text(tmp_path, text):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)
    with pytest.raises(SpecError, match=rf"tokenizer training input '{corpus}' is empty"):
        train_sentencepiece(str(corpus), str(tmp_path / "tok"), vocab_size=100)
