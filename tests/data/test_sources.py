"""Record sources: JSONL, text, ArrayRecord, TFDS, and the source registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reasonrl.data import (
    ArrayRecordSource,
    JsonlSource,
    MalformedRecordError,
    MalformedRecordWarning,
    SpecError,
    TextSource,
    make_source,
)
from tests.data.helpers import GSM8K_JSONL, GSM8K_TEXT


def write_lines(path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_jsonl_random_access(tmp_path):
    records = [{"id": i, "text": f"document {i}\nwith a newline"} for i in range(50)]
    path = write_lines(
        tmp_path / "d.jsonl",
        [json.dumps(r) for r in records[:20]] + [""] + [json.dumps(r) for r in records[20:]],
    )
    source = JsonlSource(path)
    assert len(source) == 50 and source.num_malformed == 0
    for index in [49, 0, 20, 19, 33]:
        assert source[index] == records[index]


def test_jsonl_malformed_line_names_file_and_line(tmp_path):
    lines = [json.dumps({"text": "ok"}), json.dumps({"text": "ok"}), '{"text": "broken', "[1, 2]"]
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(MalformedRecordError, match=rf"{path}:3: malformed JSON line"):
        JsonlSource(path)
    path = write_lines(tmp_path / "array.jsonl", [lines[0], lines[3]])
    with pytest.raises(MalformedRecordError, match=rf"{path}:2: .*expected a JSON object"):
        JsonlSource(path)


def test_jsonl_skip_malformed_counts_and_warns(tmp_path):
    lines = ['{"i": 0}', "not json", '{"i": 1}', "", '{"i": 2', '{"i": 3}', "\xff\xfe"]
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    with pytest.warns(MalformedRecordWarning, match="skipped 3 malformed line"):
        source = JsonlSource(path, skip_malformed=True)
    assert source.num_malformed == 3
    assert source.malformed_line_numbers == (2, 5, 7)
    assert [source[i]["i"] for i in range(len(source))] == [0, 1, 3]


def test_vendored_gsm8k_files():
    source = JsonlSource(GSM8K_JSONL)
    assert len(source) == 7473 and set(source[0]) == {"question", "answer"}
    final_answer = source[7472]["answer"].rsplit("#### ", 1)[1]
    assert final_answer.strip().replace(",", "").lstrip("-").isdigit()
    blocks = TextSource(GSM8K_TEXT, split="blank_line")
    assert len(blocks) == 7473
    assert blocks[0]["text"].startswith(source[0]["question"].strip())
    assert all("#### " in blocks[i]["text"] for i in (0, 480, 2617, 7472))


def test_text_source_splits(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"first doc line 1\nfirst doc line 2\n\n\n  \nsecond\r\nblock\n\nthird")
    by_block = TextSource(str(path), split="blank_line", text_field="body")
    assert [by_block[i]["body"] for i in range(len(by_block))] == [
        "first doc line 1\nfirst doc line 2",
        "second\nblock",
        "third",
    ]
    by_line = TextSource(str(path))
    assert [by_line[i]["text"] for i in range(len(by_line))] == [
        "first doc line 1",
        "first doc line 2",
        "second",
        "block",
        "third",
    ]


def test_array_record_source_json_and_text(tmp_path):
    from array_record.python.array_record_module import ArrayRecordWriter

    paths = []
    for shard in range(2):
        path = str(tmp_path / f"data-{shard}.array_record")
        writer = ArrayRecordWriter(path, "group_size:1")
        for i in range(5):
            writer.write(json.dumps({"id": shard * 5 + i}).encode())
        writer.close()
        paths.append(path)
    source = make_source({"type": "array_record", "paths": paths})
    assert len(source) == 10
    assert [source[i]["id"] for i in range(10)] == list(range(10))
    as_text = ArrayRecordSource(paths[1], record_format="text", text_field="raw")
    assert as_text[2] == {"raw": json.dumps({"id": 7})}

    bad = str(tmp_path / "bad.array_record")
    writer = ArrayRecordWriter(bad, "group_size:1")
    writer.write(b'{"id": 0}')
    writer.write(b"{oops")
    writer.close()
    source = ArrayRecordSource([paths[0], bad])
    assert source[5] == {"id": 0}
    with pytest.raises(MalformedRecordError, match=rf"{bad}:record 1: cannot decode"):
        source[6]


def test_tfds_source_reads_locally_built_dataset(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")

    # Unregistered, so reading goes through TFDS's read-only builder over the prepared files, as
    # for any dataset whose builder code is not imported. The one-part module name keeps TFDS
    # from resolving the class's file through package resources (needs importlib_resources).
    class TinyQa(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        __module__ = "tiny_qa_builder"
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict(
                {
                    "question": tfds.features.Text(),
                    "answer": tfds.features.Text(),
                    "number": tfds.features.Scalar(dtype=np.int32),
                }
            )
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            del dl_manager
            return {"train": self._generate_examples(12), "test": self._generate_examples(3)}

        def _generate_examples(self, count):
            for i in range(count):
                yield i, {"question": f"What is {i} + 1?", "answer": f"#### {i + 1}", "number": i}

    TinyQa(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    source = make_source(
        {"type": "tfds", "name": "tiny_qa", "split": "train", "data_dir": str(tmp_path)}
    )
    assert len(source) == 12
    records = [source[i] for i in range(len(source))]
    assert sorted(r["number"] for r in records) == list(range(12))
    for record in records:
        assert record == {
            "question": f"What is {record['number']} + 1?",
            "answer": f"#### {record['number'] + 1}",
            "number": record["number"],
        }
    with pytest.raises(SpecError, match="cannot open TFDS dataset 'missing_set'"):
        make_source({"type": "tfds", "name": "missing_set", "data_dir": str(tmp_path)})


def test_source_spec_errors_name_the_field(tmp_path):
    with pytest.raises(SpecError, match=r"spec.source.type: got 'csv'"):
        make_source({"type": "csv", "path": "x"})
    with pytest.raises(SpecError, match=r"spec.source: unknown key\(s\) \['pth'\]"):
        make_source({"type": "jsonl", "pth": "x.jsonl"})
    with pytest.raises(SpecError, match=r"spec.source: missing required key\(s\) \['path'\]"):
        make_source({"type": "jsonl"})
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(SpecError, match=rf"spec.source.path: file not found: '{missing}'"):
        make_source({"type": "jsonl", "path": missing})
    with pytest.raises(SpecError, match=r"spec.source.skip_malformed: expected bool, got 'yes'"):
        make_source({"type": "jsonl", "path": GSM8K_JSONL, "skip_malformed": "yes"})
    with pytest.raises(SpecError, match=r"spec.source.split: expected .*'line'.*got 'page'"):
        make_source({"type": "text", "path": GSM8K_TEXT, "split": "page"})
    with pytest.raises(SpecError, match=r"spec.source.paths: file not found"):
        make_source({"type": "array_record", "paths": [missing]})
