"""The files of a resumable run: settings checked across versions, atomic writes on a full disk,
the checkpoint's weights by digest, and the checks made before a run writes anything."""

import errno
import json
import logging
import shutil
from types import SimpleNamespace

import jax
import pytest

from reasonrl import models
from reasonrl.sampling import problem_runs, run_store
from reasonrl.sampling.problem_runs import SettingsError
from reasonrl.workdir import atomic_write_text
from tests.sampling.full_disk import fill_disk_for


def _check(stored, current):
    run_store.check_settings(
        stored, current, what="OUT differs", remedy="use another OUT", source="OUT/config"
    )


def test_settings_that_differ_are_named():
    with pytest.raises(
        run_store.ConfigMismatchError,
        match=r"OUT differs; rerun with the stored values or use another OUT:\n"
        r"  --checkpoint_sha256: stored 'a', now 'b'\n"
        r"  --seed: stored 0, now 1$",
    ):
        _check({"seed": 0, "checkpoint_sha256": "a"}, {"seed": 1, "checkpoint_sha256": "b"})


def test_records_of_older_versions_resume(caplog):
    """A limit of 0 meant every problem (None now); no truncate_prompt meant "none"; no digest of
    the weights cannot be checked: accepted with a warning naming the file."""
    current = {"limit": None, "truncate_prompt": "none", "checkpoint_sha256": "d" * 64}
    with caplog.at_level(logging.WARNING):
        _check({"limit": 0}, current)
    (warning,) = [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ]
    assert "OUT/config was written before runs recorded checkpoint_sha256" in warning
    assert "without checking the checkpoint's weights" in warning
    _check({"limit": 3, "checkpoint_sha256": "d" * 64}, {**current, "limit": 3})
    with pytest.raises(run_store.ConfigMismatchError, match=r"--limit: stored None, now 3"):
        _check({"limit": 0, "checkpoint_sha256": "d" * 64}, {**current, "limit": 3})


def test_a_full_disk_leaves_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    atomic_write_text(path, '{"old": true}\n')
    fill_disk_for(monkeypatch, "summary.json")
    with pytest.raises(OSError, match=r"No space left on device") as raised:
        atomic_write_text(path, '{"new": true, "padding": "' + "x" * 1000 + '"}\n')
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    assert path.read_text() == '{"old": true}\n'
    assert sorted(child.name for child in tmp_path.iterdir()) == ["summary.json"]


def test_a_failed_append_names_its_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_store.os, "fsync", full)
    with pytest.raises(OSError, match="No space left") as raised:
        run_store.append_synced(tmp_path / "samples.jsonl", b"{}\n")
    assert raised.value.filename == str(tmp_path / "samples.jsonl")


# --------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    config = models.get_preset(
        "tiny-qwen3", vocab_size=64, num_layers=1, max_position_embeddings=128
    )
    directory = tmp_path_factory.mktemp("run_store") / "checkpoint"
    models.save_hf_checkpoint(config, models.init_params(config, jax.random.key(0)), directory)
    return directory


@pytest.fixture
def checkpoint(saved_checkpoint, tmp_path):
    """A copy of a tiny Hugging Face checkpoint (config.json, *.safetensors)."""
    return shutil.copytree(saved_checkpoint, tmp_path / "checkpoint")


def test_checkpoint_digest_follows_the_weights_and_the_config(checkpoint):
    digest = problem_runs.checkpoint_digest(checkpoint)
    assert len(digest) == 64 and digest == problem_runs.checkpoint_digest(str(checkpoint))
    (checkpoint / "notes.txt").write_text("not part of the model")
    assert problem_runs.checkpoint_digest(checkpoint) == digest
    weights = next(checkpoint.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    changed = problem_runs.checkpoint_digest(checkpoint)
    assert changed != digest
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "rope_theta": 1.0}))
    assert problem_runs.checkpoint_digest(checkpoint) not in (digest, changed)


def test_max_new_tokens_must_leave_room_for_a_prompt(checkpoint):
    context = json.loads((checkpoint / "config.json").read_text())["max_position_embeddings"]
    problem_runs.check_context(str(checkpoint), context - 1)
    for max_new_tokens in (context, context + 1):
        with pytest.raises(
            SettingsError,
            match=rf"max_new_tokens={max_new_tokens} does not fit "
            rf"the model's context of {context} tokens.*; lower --max_new_tokens",
        ):
            problem_runs.check_context(str(checkpoint), max_new_tokens)


def test_missing_checkpoint_or_tokenizer_is_named(checkpoint, tmp_path):
    with pytest.raises(SettingsError, match=r"--teacher '.*none' does not exist"):
        problem_runs.resolve_model_paths(str(tmp_path / "none"), None, checkpoint_flag="--teacher")
    (tmp_path / "notes.txt").write_text("not a tokenizer")
    for tokenizer in (tmp_path / "notes.txt", tmp_path / "missing"):
        with pytest.raises(
            SettingsError,
            match=rf"--tokenizer: cannot load a tokenizer from "
            rf"'{tokenizer}'",
        ):
            problem_runs.resolve_model_paths(str(checkpoint), str(tokenizer))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_samples": 0}, r"--num_samples must be >= 1, got 0"),
        ({"max_new_tokens": -1}, r"--max_new_tokens must be >= 1, got -1"),
        ({"top_p": 0.0}, r"0 < --top_p <= 1"),
        ({"chat_template": "alpaca"}, r"--chat_template: unknown 'alpaca'"),
        ({"truncate_prompt": "right"}, r"--truncate_prompt: unknown 'right'"),
    ],
)
def test_sampling_settings_are_checked(overrides, message):
    settings = dict(
        prompt_template="r1",
        chat_template="chatml",
        num_samples=1,
        temperature=0.6,
        top_p=0.95,
        top_k=0,
        max_new_tokens=16,
        seed=0,
        truncate_prompt="none",
    )
    problem_runs.check_sampling(SimpleNamespace(**settings))
    with pytest.raises(SettingsError, match=message):
        problem_runs.check_sampling(SimpleNamespace(**{**settings, **overrides}))


def test_counts_name_the_flag_and_an_unset_limit_means_every_problem():
    problem_runs.check_at_least_one(limit=None, batch_size=1)
    with pytest.raises(
        SettingsError,
        match=r"--limit must be >= 1 \(leave it unset for every "
        r"problem\), got 0",
    ):
        problem_runs.check_at_least_one(limit=0)
    with pytest.raises(SettingsError, match=r"--batch_size must be >= 1, got 0"):
        problem_runs.check_at_least_one(limit=2, batch_size=0)
