"""A resumed stage leaves the same metrics.jsonl as an uninterrupted one (every (step, key)
once), and an unreadable final checkpoint is set aside and saved again, not crashed on."""

import json
import shutil

import jax
import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.train import run_supervised_stage as run_stage
from tests.train.stages import tiny_stage

# Logs every 2 updates and checkpoints every 2: a run stopped after update 5 resumes from 4.
TRAIN = dict(
    steps=6, log_every=2, checkpoint_every=2, keep_checkpoints=5, async_checkpointing=False
)
RUN_DEPENDENT = ("perf/", "time/")  # wall-clock values, different in every run


def _records(workdir) -> list[dict]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith(RUN_DEPENDENT)} for r in records]


def _checkpoints(workdir) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _params(export_dir):
    return [np.asarray(x) for x in jax.tree.leaves(models.load_hf_checkpoint(export_dir)[1])]


@pytest.fixture(scope="module")
def reference(tiny_corpus, tmp_path_factory):
    """(stage, tokenizer, workdir of an uninterrupted run, its records, its final params)."""
    corpus, tokenizer_path = tiny_corpus
    stage = tiny_stage(corpus, **TRAIN)
    tokenizer = data_lib.load_tokenizer(tokenizer_path)
    workdir = tmp_path_factory.mktemp("reference")
    result = run_stage(stage, workdir, tokenizer=tokenizer)
    return stage, tokenizer, workdir, _records(workdir), _params(result.export_dir)


def test_resumed_run_logs_each_step_once(reference, tmp_path):
    stage, tokenizer, _, records, _ = reference
    partial = run_stage(stage, tmp_path, tokenizer=tokenizer, max_steps=5)
    assert partial.steps == 5 and _checkpoints(tmp_path) == [2, 4]

    resumed = run_stage(stage, tmp_path, tokenizer=tokenizer)
    assert resumed.resumed_from == 4
    resumed_records = _records(tmp_path)
    pairs = [(r["step"], key) for r in resumed_records for key in r if key != "step"]
    assert len(pairs) == len(set(pairs)), "a step re-run after the checkpoint was logged twice"
    assert _comparable(resumed_records) == _comparable(records)


def test_unreadable_final_checkpoint_is_set_aside_and_saved_again(reference, tmp_path, capsys):
    stage, tokenizer, reference_dir, records, params = reference
    workdir = tmp_path / "run"
    shutil.copytree(reference_dir, workdir)
    shutil.rmtree(workdir / "export")
    final = workdir / "checkpoints" / "6"
    for file in final.rglob("*"):
        if file.is_file() and file.stat().st_size > 0 and "state" in file.parts:
            with open(file, "r+b") as handle:
                handle.truncate(file.stat().st_size // 2)

    resumed = run_stage(stage, workdir, tokenizer=tokenizer)  # retrains 5..6, saves 6 again
    out = capsys.readouterr().out
    assert "checkpoint step 6" in out and "unreadable" in out and "aside" in out
    assert resumed.resumed_from == 4
    assert _checkpoints(workdir) == [2, 4, 6]
    aside = [p.name for p in (workdir / "checkpoints").iterdir() if not p.name.isdigit()]
    assert len(aside) == 1 and aside[0].startswith("6.unreadable-"), aside
    for x, y in zip(_params(resumed.export_dir), params):
        np.testing.assert_array_equal(x, y)
    assert _comparable(_records(workdir)) == _comparable(records)
    # The checkpoint saved again is whole: a further resume reads it.
    again = run_stage(stage, workdir, tokenizer=tokenizer)
    assert again.resumed_from == 6 and "unreadable" not in capsys.readouterr().out
