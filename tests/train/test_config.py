"""Config validation: one clear error naming the field, before anything compiles."""

import subprocess
import sys
from pathlib import Path

import pytest

from reasonrl.train import JobConfigError, job_config, validate_job
from tests.train.stages import tiny_stage

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def job(tiny_corpus):
    corpus, tokenizer = tiny_corpus
    config = job_config()
    config.tokenizer.path = tokenizer
    config.stages.pretrain = tiny_stage(corpus)
    return config


def test_valid_job_passes(job):
    validate_job(job, num_devices=8)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c.stages.pretrain.train.__setattr__("stepz", 3),
            r"stages\.pretrain\.train\.stepz: unknown key; did you mean 'steps'\?",
        ),
        (
            lambda c: c.stages.pretrain.optimizer.__setattr__("wd", 3),
            r"stages\.pretrain\.optimizer\.wd: unknown key",
        ),
        (
            lambda c: c.stages.pretrain.model.overrides.__setattr__("hidden", 3),
            r"stages\.pretrain\.model\.overrides\.hidden: not a ModelConfig field",
        ),
        (
            lambda c: c.stages.pretrain.objective.__setattr__("beta", 0.1),
            r"stages\.pretrain\.objective\.beta: not an option of objective 'next_token'",
        ),
        (
            lambda c: c.stages.pretrain.objective.__setattr__("name", "ppo9"),
            r"stages\.pretrain\.objective\.name: unknown objective 'ppo9'",
        ),
        (
            lambda c: c.stages.pretrain.train.__setattr__("batch_size", 6),
            r"stages\.pretrain\.train\.batch_size: micro-batch of 6 rows .* data\*fsdp=8",
        ),
        (
            lambda c: c.stages.pretrain.train.update(batch_size=8, grad_accum=3),
            r"stages\.pretrain\.train\.batch_size: 8 rows per update do not split into "
            r"grad_accum=3",
        ),
        (
            lambda c: c.stages.pretrain.train.__setattr__("data_shards", 3),
            r"stages\.pretrain\.train\.data_shards: 3 logical data shards must divide "
            r"train\.batch_size=8",
        ),
        (
            lambda c: c.stages.pretrain.train.__setattr__("data_shards", -1),
            r"stages\.pretrain\.train\.data_shards: -1 logical data shards",
        ),
        (
            lambda c: c.stages.pretrain.mesh.update(data=3),
            r"stages\.pretrain\.mesh: .*do not divide the 8 available devices",
        ),
        (
            lambda c: c.stages.pretrain.model.__setattr__("preset", "gpt5"),
            r"stages\.pretrain\.model\.preset: unknown preset 'gpt5'",
        ),
        (
            lambda c: c.stages.pretrain.model.__setattr__("init_from", "sft"),
            r"stages\.pretrain\.model\.init_from: 'sft' is not a stage of this job",
        ),
        (
            lambda c: c.stages.pretrain.model.__setattr__("init_from", "pretrain"),
            r"stages\.pretrain\.model\.init_from: stages \['pretrain'\] start from each other in a "
            r"cycle",
        ),
        (
            lambda c: c.stages.pretrain.model.__setattr__("hf_checkpoint", "/no/such/dir"),
            r"stages\.pretrain\.model\.hf_checkpoint: directory /no/such/dir does not exist",
        ),
        (
            lambda c: c.tokenizer.__setattr__("path", "/no/tokenizer.model"),
            r"tokenizer\.path: /no/tokenizer\.model does not exist",
        ),
        (
            lambda c: c.stages.pretrain.train.__setattr__("on_nonfinite", "ignore"),
            r"stages\.pretrain\.train\.on_nonfinite: 'ignore'",
        ),
        (
            lambda c: c.stages.pretrain.optimizer.__setattr__("schedule", "step"),
            r"stages\.pretrain\.optimizer\.schedule: 'step'",
        ),
    ],
)
def test_invalid_fields_are_named(job, edit, message):
    job.stages.pretrain.mesh.update(data=1, fsdp=-1, tensor=1)
    job.stages.pretrain.train.batch_size = 8
    edit(job)
    with pytest.raises(JobConfigError, match=message):
        validate_job(job, num_devices=8, config_file="configs/x.py")


def test_wrong_type_is_named(job):
    job.stages.pretrain.train.unlock() if hasattr(job, "unlock") else None
    job.stages.pretrain.train._fields["steps"] = "ten"  # bypass ConfigDict's own type check
    with pytest.raises(
        JobConfigError,
        match=r"stages\.pretrain\.train\.steps: expected int, "
        r"got str 'ten' \(in configs/x\.py\)",
    ):
        validate_job(job, num_devices=8, config_file="configs/x.py")


def test_main_reports_errors_without_traceback(tiny_corpus, tmp_path):
    corpus, tokenizer = tiny_corpus
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonrl.main",
            f"--config={REPO / 'tests/train/tiny_job.py'}:{corpus},{tokenizer}",
            "--config.stages.pretrain.mesh.data=3",
            f"--workdir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: stages.pretrain.mesh" in result.stderr
    assert "Traceback" not in result.stderr
