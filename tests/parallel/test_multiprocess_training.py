"""A supervised job in 2 processes x 4 CPU devices, started the way the issue's pod start fails
today (`JAX_COORDINATOR_ADDRESS` + `JAX_NUM_PROCESSES` + `JAX_PROCESS_ID`), against the same job
in 1 process x 8 devices. Each run takes ~30-70 s on two cores: slow suite."""

from __future__ import annotations

import json
import math
import shutil
import sys

import jax
import numpy as np
import pytest

from tests.parallel.test_multiprocess import REPO_ROOT, run_job_processes

STEPS = 6


def _run_job(tiny_corpus, workdir, num_processes):
    corpus, tokenizer = tiny_corpus
    argv = [
        sys.executable,
        "-m",
        "reasonrl.main",
        f"--config={REPO_ROOT / 'tests/train/tiny_job.py'}:{corpus},{tokenizer},eval",
        f"--workdir={workdir}",
        f"--config.stages.pretrain.train.steps={STEPS}",
        # One logical data shard per row (0): the layout that splits over any process count.
        "--config.stages.pretrain.train.data_shards=0",
    ]
    results = run_job_processes(num_processes, argv, timeout=500, compile_cache=False)
    for i, result in enumerate(results):
        assert result.returncode == 0, f"process {i} failed:\n{result.stderr[-4000:]}"
    return results


def _losses(workdir, key="train/loss"):
    records = [json.loads(line) for line in (workdir / "pretrain/metrics.jsonl").open()]
    return {r["step"]: r[key] for r in records if key in r}


@pytest.fixture(scope="module")
def two_processes(tiny_corpus, tmp_path_factory):
    """(workdir, results) of the job in 2 processes x 4 devices."""
    workdir = tmp_path_factory.mktemp("two_processes")
    return workdir, _run_job(tiny_corpus, workdir, 2)


@pytest.fixture(scope="module")
def one_process(tiny_corpus, tmp_path_factory):
    """Workdir of the job in 1 process x 8 devices."""
    workdir = tmp_path_factory.mktemp("one_process")
    _run_job(tiny_corpus, workdir, 1)
    return workdir


@pytest.mark.slow
def test_two_processes_run_one_job(two_processes):
    two, results = two_processes
    assert f"stage pretrain: {STEPS} steps" in results[0].stdout
    losses = _losses(two)  # written by process 0 alone: every step once
    assert sorted(losses) == list(range(STEPS))
    assert all(math.isfinite(v) for v in losses.values())
    assert losses[STEPS - 1] < losses[0]
    stage = two / "pretrain"
    assert sorted(p.name for p in (stage / "checkpoints").iterdir()) == ["3", "6"]
    assert (stage / "export" / "model.safetensors").is_file()


@pytest.mark.slow
def test_two_processes_match_one_process(two_processes, one_process):
    from reasonrl import models

    (two, _), one = two_processes, one_process
    for key in ("train/loss", "eval/loss"):  # eval_data is read in logical shards as well
        a, b = _losses(two, key), _losses(one, key)
        assert sorted(a) == sorted(b) and a, key
        np.testing.assert_allclose([a[s] for s in sorted(a)], [b[s] for s in sorted(b)], rtol=1e-5)
    params_two = models.load_hf_checkpoint(two / "pretrain" / "export")[1]
    params_one = models.load_hf_checkpoint(one / "pretrain" / "export")[1]
    for x, y in zip(jax.tree.leaves(params_two), jax.tree.leaves(params_one)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


def _interrupted_copy(finished, target):
    """`finished`'s workdir as if the job had been stopped after the checkpoint at step 3."""
    shutil.copytree(finished, target)
    stage = target / "pretrain"
    (stage / "DONE.json").unlink()
    shutil.rmtree(stage / "export")
    shutil.rmtree(stage / "checkpoints" / str(STEPS))
    return target


@pytest.mark.slow
def test_two_process_checkpoint_restores_in_one_process(tiny_corpus, two_processes, tmp_path):
    finished, _ = two_processes
    workdir = _interrupted_copy(finished, tmp_path / "resumed")
    [result] = _run_job(tiny_corpus, workdir, 1)
    assert "resumed from checkpoint step 3" in result.stdout
    assert f"stage pretrain: {STEPS} steps" in result.stdout
    losses = _losses(workdir)
    assert sorted(losses) == list(range(STEPS))
    before = _losses(finished)
    assert [losses[s] for s in range(3)] == [before[s] for s in range(3)]  # kept, not rerun
    # The resumed steps read the data the 2 processes would have read (every logical data
    # shard's state is in the checkpoint): the same losses, up to 1- vs 2-process float sums.
    np.testing.assert_allclose(
        [losses[s] for s in range(3, STEPS)], [before[s] for s in range(3, STEPS)], rtol=1e-5
    )


@pytest.mark.slow
def test_two_process_resume_continues_bit_for_bit(tiny_corpus, two_processes, tmp_path):
    finished, _ = two_processes
    workdir = _interrupted_copy(finished, tmp_path / "resumed")
    results = _run_job(tiny_corpus, workdir, 2)
    assert "resumed from checkpoint step 3" in results[0].stdout
    assert _losses(workdir) == _losses(finished)
    assert _losses(workdir, "eval/loss") == _losses(finished, "eval/loss")
