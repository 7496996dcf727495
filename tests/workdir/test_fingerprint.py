"""Fingerprints of a workdir's results: file identities, resolved configs, one clear error."""

import hashlib
import os

import pytest

from reasonrl.workdir import fingerprint as fp


def _stage_config(data_path, eval_path=None, **train):
    return {
        "model": {"preset": "tiny", "init_from": ""},
        "data": {"source": {"type": "jsonl", "path": str(data_path)}, "seed": 1},
        "eval_data": (
            {"source": {"type": "array_record", "paths": [str(eval_path)]}} if eval_path else {}
        ),
        "train": {
            "steps": 10,
            "log_every": 1,
            "checkpoint_every": 5,
            "keep_checkpoints": 2,
            "async_checkpointing": True,
            "eval_every": 0,
            "eval_batches": 4,
            **train,
        },
    }


def test_small_file_identity_is_size_and_sha256(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"abc\n")
    assert fp.file_identity(path) == {"size": 4, "sha256": hashlib.sha256(b"abc\n").hexdigest()}


def test_large_file_identity_reads_only_its_edges(tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "LARGE_FILE_BYTES", 16)
    monkeypatch.setattr(fp, "EDGE_BYTES", 4)
    path = tmp_path / "big.bin"
    path.write_bytes(b"HEAD" + b"x" * 20 + b"TAIL")
    identity = fp.file_identity(path)
    assert identity == {
        "size": 28,
        "mtime_ns": path.stat().st_mtime_ns,
        "sha256_first_last_8MiB": hashlib.sha256(b"HEADTAIL").hexdigest(),
    }
    path.write_bytes(b"HEAD" + b"y" * 20 + b"TAIL")  # the middle is not read...
    os.utime(path, ns=(identity["mtime_ns"], identity["mtime_ns"]))
    assert fp.file_identity(path) == identity
    os.utime(path, ns=(1, 1))  # ...but the modification time is part of it
    assert fp.file_identity(path) != identity


def test_stage_fingerprint_covers_inputs_but_not_logging(tmp_path):
    data, evals, tokenizer = (tmp_path / n for n in ("train.jsonl", "eval.ar", "tok.model"))
    for path in (data, evals, tokenizer):
        path.write_text(path.name)
    parent = fp.with_digest({"x": 1})
    made = fp.stage_fingerprint(
        _stage_config(data, evals), tokenizer_files=[tokenizer], init_from=parent
    )
    assert set(made) == {"config", "tokenizer", "inputs", "init_from", "digest"}
    assert made["tokenizer"] == {"sha256": hashlib.sha256(b"tok.model").hexdigest()}
    assert set(made["inputs"]) == {"data.source.path", "eval_data.source.paths.0"}
    assert made["init_from"] == parent["digest"]
    assert made["config"]["train"] == {"steps": 10}  # RESULT_NEUTRAL_FIELDS are left out

    neutral = fp.stage_fingerprint(
        _stage_config(data, evals, log_every=7, eval_every=3),
        tokenizer_files=[tokenizer],
        init_from=parent,
    )
    assert neutral == made
    data.write_text("other rows")
    assert (
        fp.stage_fingerprint(
            _stage_config(data, evals), tokenizer_files=[tokenizer], init_from=parent
        )["digest"]
        != made["digest"]
    )


def test_differences_are_dotted_fields_with_stored_and_new_values():
    stored = fp.with_digest({"config": {"lr": 0.1, "name": "a"}, "tokenizer": {"sha256": "a" * 64}})
    new = fp.with_digest({"config": {"lr": 0.2, "new": 1}, "tokenizer": {"sha256": "b" * 64}})
    assert fp.differences(stored, new) == [
        "config.lr 0.1 → 0.2",
        'config.name "a" → (absent)',
        "config.new (absent) → 1",
        f"tokenizer.sha256 {'a' * 12}… → {'b' * 12}…",
    ]


def _result(tmp_path, name, value, has_results=True):
    return fp.ResultDir(name, tmp_path / name, fp.with_digest({"value": value}), has_results)


def test_reconcile_raises_one_error_for_every_changed_result(tmp_path):
    for name in ("tokenizer", "stages.a", "stages.b"):
        fp.write_fingerprint(tmp_path / name, fp.with_digest({"value": 1}))
    results = [
        _result(tmp_path, "tokenizer", 2),
        _result(tmp_path, "stages.a", 1),
        _result(tmp_path, "stages.b", 3),
        _result(tmp_path, "stages.c", 4, has_results=False),
    ]  # nothing to reuse there
    with pytest.raises(fp.FingerprintMismatchError) as error:
        fp.reconcile(tmp_path, results, reuse_changed=False)
    assert str(error.value).splitlines()[1:] == ["tokenizer: value 1 → 2", "stages.b: value 1 → 3"]
    assert fp.read_fingerprint(tmp_path / "tokenizer")["value"] == 1


def test_reconcile_reuse_changed_warns_and_records(tmp_path, capsys):
    fp.write_fingerprint(tmp_path / "stages.a", fp.with_digest({"value": 1}))
    results = [_result(tmp_path, "stages.a", 2), _result(tmp_path, "stages.b", 3)]
    fp.write_fingerprint(tmp_path / "stages.b", results[1].fingerprint)
    assert fp.reconcile(tmp_path, results, reuse_changed=True) == results[:1]
    assert "stages.a: value 1 → 2" in capsys.readouterr().err
    assert fp.read_fingerprint(tmp_path / "stages.a")["value"] == 1  # until the job records it
    fp.record(results[:1])
    assert fp.read_fingerprint(tmp_path / "stages.a") == results[0].fingerprint
    assert fp.reconcile(tmp_path, results, reuse_changed=False) == []
