"""Runs survive SIGKILL and corrupt checkpoints, and continue bit for bit."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.train import run_supervised_stage as run_stage
from tests.train.stages import tiny_stage

REPO = Path(__file__).resolve().parents[2]


def _losses(workdir: Path) -> dict[int, float]:
    """Per-step train loss; a step logged twice (before and after a crash) keeps its last value."""
    losses = {}
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        losses[record["step"]] = record["train/loss"]
    return losses


def _params(export_dir: Path):
    return models.load_hf_checkpoint(export_dir)[1]


def _assert_same_params(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _main_command(corpus, tokenizer, workdir):
    return [
        sys.executable,
        "-m",
        "reasonrl.main",
        f"--config={REPO / 'tests/train/tiny_job.py'}:{corpus},{tokenizer}",
        f"--workdir={workdir}",
    ]


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)
    return env


@pytest.mark.slow
def test_sigkill_and_restart_continue_bit_for_bit(tiny_corpus, tmp_path):
    corpus, tokenizer = tiny_corpus
    reference = tmp_path / "reference"
    subprocess.run(
        _main_command(corpus, tokenizer, reference),
        check=True,
        env=_env(),
        capture_output=True,
        timeout=600,
    )

    crashed = tmp_path / "crashed"
    process = subprocess.Popen(
        _main_command(corpus, tokenizer, crashed),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = crashed / "pretrain" / "metrics.jsonl"
    deadline = time.time() + 300
    kill_at = 8  # after the checkpoint at step 6, mid-way to the one at step 9
    while time.time() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= kill_at:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (crashed / "pretrain" / "export").exists()

    restart = subprocess.run(
        _main_command(corpus, tokenizer, crashed),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert restart.returncode == 0, restart.stderr[-3000:]
    assert "resumed from checkpoint step" in restart.stdout
    assert _losses(crashed / "pretrain") == _losses(reference / "pretrain")
    assert sorted(_losses(reference / "pretrain")) == list(range(12))
    _assert_same_params(
        _params(crashed / "pretrain" / "export"), _params(reference / "pretrain" / "export")
    )


@pytest.mark.slow
def test_truncated_newest_checkpoint_falls_back_to_previous(tiny_corpus, tmp_path, capsys):
    corpus, tokenizer_path = tiny_corpus
    tokenizer = data_lib.load_tokenizer(tokenizer_path)
    stage = tiny_stage(corpus, async_checkpointing=False)

    reference = run_stage(stage, tmp_path / "reference", tokenizer=tokenizer)
    partial = run_stage(stage, tmp_path / "broken", tokenizer=tokenizer, max_steps=9)
    assert partial.steps == 9 and partial.export_dir is None
    newest = tmp_path / "broken" / "checkpoints" / "9"
    truncated = 0
    for file in newest.rglob("*"):
        if file.is_file() and file.stat().st_size > 0 and "state" in file.parts:
            with open(file, "r+b") as handle:
                handle.truncate(file.stat().st_size // 2)
            truncated += 1
    assert truncated > 0

    resumed = run_stage(stage, tmp_path / "broken", tokenizer=tokenizer)
    out = capsys.readouterr().out
    assert "checkpoint step 9" in out and "unreadable" in out
    assert resumed.resumed_from == 6
    _assert_same_params(_params(resumed.export_dir), _params(reference.export_dir))
    assert _losses(tmp_path / "broken") == _losses(tmp_path / "reference")
