"""--checkpoint: a Hugging Face directory, a stage directory, or a workdir's last stage."""

import os

import pytest

from reasonrl.train.exports import CheckpointNotFoundError, resolve_checkpoint


def _export(stage_dir, done_mtime=None):
    export = stage_dir / "export"
    export.mkdir(parents=True)
    (export / "config.json").write_text("{}")
    if done_mtime is not None:
        (stage_dir / "DONE.json").write_text("{}")
        os.utime(stage_dir / "DONE.json", (done_mtime, done_mtime))
    return export


def test_hf_directory_is_used_as_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_checkpoint(tmp_path) == tmp_path


def test_stage_directory_gives_its_export(tmp_path):
    export = _export(tmp_path / "sft", done_mtime=100)
    assert resolve_checkpoint(tmp_path / "sft") == export


def test_workdir_gives_the_last_finished_stage(tmp_path):
    # The DONE.json times decide, not the stage names.
    _export(tmp_path / "pretrain", done_mtime=1_000)
    sft = _export(tmp_path / "sft", done_mtime=2_000)
    (tmp_path / "tokenizer").mkdir()
    assert resolve_checkpoint(tmp_path) == sft
    os.utime(tmp_path / "pretrain" / "DONE.json", (3_000, 3_000))
    assert resolve_checkpoint(tmp_path) == tmp_path / "pretrain" / "export"


def test_stage_without_done_file_uses_export_time(tmp_path):
    _export(tmp_path / "a", done_mtime=1_000)
    late = _export(tmp_path / "b")
    os.utime(late / "config.json", (5_000, 5_000))
    assert resolve_checkpoint(tmp_path) == late


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointNotFoundError, match="reasonrl workdir"):
        resolve_checkpoint(tmp_path)
