"""A workdir belongs to one job, and a job reuses only results made from its own inputs."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrl.job import lock_workdir, run_job
from reasonrl.train import job_config
from reasonrl.train.checkpointing import CheckpointMismatchError
from reasonrl.workdir import (
    LOCK_FILE,
    DirectoryLock,
    DirectoryLockedError,
    FingerprintMismatchError,
    read_fingerprint,
)
from reasonrl.workdir.fingerprint import files_sha256
from tests.train import tiny_job
from tests.train.stages import tiny_stage

REPO = Path(__file__).resolve().parents[2]
TRAIN = dict(steps=2, checkpoint_every=2, async_checkpointing=False)


def _job(corpus, *, vocab_size: int = 384, **train):
    """A job that trains its tokenizer on `corpus` (not the 400-piece one of `tiny_corpus`),
    then a 2-step pretrain stage."""
    config = job_config()
    config.tokenizer.train_on = str(corpus)
    config.tokenizer.vocab_size = vocab_size
    config.stages.pretrain = tiny_stage(corpus, **{**TRAIN, **train})
    return config


@pytest.fixture(scope="module")
def finished(tiny_corpus, tmp_path_factory) -> Path:
    """A workdir where `_job(corpus)` ran to the end (copy it before changing it)."""
    workdir = tmp_path_factory.mktemp("finished")
    run_job(_job(tiny_corpus[0]), workdir)
    return workdir


@pytest.fixture
def workdir(finished, tmp_path) -> Path:
    copy = tmp_path / "workdir"
    shutil.copytree(finished, copy)
    return copy


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)
    return env


# --- fingerprints ----------------------------------------------------------------------------


def test_finished_results_carry_fingerprints_and_are_reused(tiny_corpus, workdir):
    corpus = tiny_corpus[0]
    stage = read_fingerprint(workdir / "pretrain")
    assert stage["tokenizer"]["sha256"] == files_sha256([workdir / "tokenizer/tokenizer.model"])
    assert set(stage["inputs"]) == {"data.source.path"}
    assert stage["inputs"]["data.source.path"]["size"] == corpus.stat().st_size
    assert "log_every" not in stage["config"]["train"] and stage["init_from"] is None
    assert read_fingerprint(workdir / "tokenizer")["vocab_size"] == 384
    assert json.loads((workdir / "pretrain" / "DONE.json").read_text())["steps"] == 2

    # Unchanged, or changed only where the result does not depend on it: reused, not retrained.
    result = run_job(_job(corpus, log_every=2, keep_checkpoints=1), workdir)
    assert result.stages["pretrain"].first_loss is None
    assert not (workdir / LOCK_FILE).exists()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda config, tokenizer: config.stages.pretrain.optimizer.update(learning_rate=0.02),
            r"stages\.pretrain: config\.optimizer\.learning_rate 0\.01 → 0\.02",
        ),
        (
            lambda config, tokenizer: config.tokenizer.update(train_on="", path=str(tokenizer)),
            r"stages\.pretrain: tokenizer\.sha256 \w{12}… → \w{12}…",
        ),
        (
            lambda config, tokenizer: config.stages.pretrain.model.overrides.update(hidden_size=48),
            r"stages\.pretrain: config\.model\.overrides\.hidden_size 32 → 48",
        ),
    ],
)
def test_changed_inputs_refuse_naming_each_field(tiny_corpus, workdir, edit, expected):
    corpus, tokenizer = tiny_corpus
    config = _job(corpus)
    edit(config, tokenizer)
    before = read_fingerprint(workdir / "pretrain")
    with pytest.raises(FingerprintMismatchError, match=expected) as error:
        run_job(config, workdir)
    assert "--reuse_changed" in str(error.value)
    assert read_fingerprint(workdir / "pretrain") == before


def test_edited_data_file_refuses(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus.txt"
    shutil.copy(tiny_corpus[0], corpus)
    config = _job(corpus)
    config.tokenizer.update(train_on="", path=str(tiny_corpus[1]))
    run_job(config, tmp_path / "workdir")
    with open(corpus, "a") as file:
        file.write("\n\nOne more document.\n")
    with pytest.raises(
        FingerprintMismatchError,
        match=r"inputs\.data\.source\.path\.sha256 .*; inputs\.data\.source\.path"
        r"\.size \d+ → \d+",
    ):
        run_job(config, tmp_path / "workdir")


def test_another_recipe_on_a_workdir_refuses_before_anything_trains(tiny_corpus, workdir, tmp_path):
    """`python -m reasonrl.main --config=configs/grpo.py --workdir=<the demo's workdir>` used to
    run RL on the demo's model with the demo's tokenizer. Here: another tokenizer corpus and
    vocabulary, a changed first stage and a new stage starting from it."""
    other_corpus = tmp_path / "other.txt"
    other_corpus.write_text("1+2=3\n\n4+5=9\n")
    config = _job(other_corpus, vocab_size=300)
    sft = tiny_stage(tiny_corpus[0], **TRAIN)
    sft.model.update(init_from="pretrain", overrides={})
    config.stages.sft = sft
    with pytest.raises(FingerprintMismatchError) as error:
        run_job(config, workdir)
    lines = str(error.value).splitlines()
    assert len(lines) == 3, lines  # one error: a header, then one line per differing result
    assert lines[1].startswith("tokenizer: corpus.sha256 ") and "vocab_size 384 → 300" in lines[1]
    assert lines[2].startswith("stages.pretrain: config.data.source.path ")
    assert not (workdir / "sft").exists()
    assert read_fingerprint(workdir / "tokenizer")["vocab_size"] == 384


def test_reuse_changed_keeps_results_and_records_the_new_fingerprint(tiny_corpus, workdir, capsys):
    config = _job(tiny_corpus[0])
    config.stages.pretrain.optimizer.learning_rate = 0.02
    result = run_job(config, workdir, reuse_changed=True)
    assert result.stages["pretrain"].first_loss is None  # kept, not retrained
    err = capsys.readouterr().err
    assert "reusing results made from other inputs" in err and "learning_rate 0.01 → 0.02" in err
    assert read_fingerprint(workdir / "pretrain")["config"]["optimizer"]["learning_rate"] == 0.02
    run_job(config, workdir)  # recorded: no longer a difference


def test_results_of_an_older_version_get_a_fingerprint_with_a_warning(tiny_corpus, workdir, capsys):
    stored = {name: read_fingerprint(workdir / name) for name in ("tokenizer", "pretrain")}
    for name in stored:
        (workdir / name / "fingerprint.json").unlink()
    run_job(_job(tiny_corpus[0]), workdir)
    err = capsys.readouterr().err
    assert "tokenizer: " in err and "stages.pretrain: " in err and "older version" in err
    assert {name: read_fingerprint(workdir / name) for name in stored} == stored


def test_interrupted_stage_of_another_model_is_refused_even_with_reuse_changed(
    tiny_corpus, workdir
):
    for done in ("DONE.json", "export"):  # as if killed after its last checkpoint
        path = workdir / "pretrain" / done
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    config = _job(tiny_corpus[0])
    config.stages.pretrain.model.overrides.hidden_size = 48
    with pytest.raises(FingerprintMismatchError, match=r"hidden_size 32 → 48"):
        run_job(config, workdir)
    with pytest.raises(
        CheckpointMismatchError,
        match=r"params\.embedding: \(\d+, 32\) float32 → \(\d+, 48\) float32",
    ):
        run_job(config, workdir, reuse_changed=True)
    assert sorted(p.name for p in (workdir / "pretrain" / "checkpoints").iterdir()) == ["2"]


def test_main_reports_a_changed_workdir_in_one_line(tiny_corpus, tmp_path):
    corpus, tokenizer = tiny_corpus
    config = tiny_job.get_config(f"{corpus},{tokenizer}")
    config.stages.pretrain.train.update(TRAIN)
    run_job(config, tmp_path)
    command = [
        sys.executable,
        "-m",
        "reasonrl.main",
        f"--config={REPO / 'tests/train/tiny_job.py'}:{corpus},{tokenizer}",
        f"--workdir={tmp_path}",
        "--config.stages.pretrain.train.steps=2",
        "--config.stages.pretrain.train.checkpoint_every=2",
        "--config.stages.pretrain.train.async_checkpointing=False",
        "--config.stages.pretrain.optimizer.learning_rate=0.02",
    ]
    refused = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert f"error: {tmp_path} holds results made from other inputs" in refused.stderr
    assert "stages.pretrain: config.optimizer.learning_rate 0.01 → 0.02" in refused.stderr
    assert "Traceback" not in refused.stderr

    reused = subprocess.run(
        command + ["--reuse_changed"], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert reused.returncode == 0, reused.stderr[-3000:]
    assert "(finished earlier)" in reused.stdout


# --- the workdir's lock ----------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from reasonrl.job import lock_workdir
with lock_workdir(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(300)
"""


def test_second_job_on_a_workdir_refuses_naming_the_holder(tiny_corpus, tmp_path):
    corpus, tokenizer = tiny_corpus
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "reasonrl.main",
                f"--config={REPO / 'tests/train/tiny_job.py'}:{corpus},{tokenizer}",
                f"--workdir={tmp_path}",
            ],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2, second.stderr[-3000:]
    assert (
        f"error: {tmp_path} is in use by another run (host {socket.gethostname()}, "
        f"pid {holder.pid}, started "
    ) in second.stderr
    assert "Traceback" not in second.stderr
    assert not (tmp_path / "pretrain").exists()


def test_a_live_lock_refuses_and_a_stale_one_is_taken_over(tiny_corpus, workdir, capsys):
    config = _job(tiny_corpus[0])
    with (
        DirectoryLock(workdir),
        pytest.raises(DirectoryLockedError, match=f"pid {os.getpid()}, started "),
    ):
        run_job(config, workdir)

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (workdir / LOCK_FILE).write_text(
        json.dumps(
            dict(
                host=socket.gethostname(),
                pid=gone.pid,
                process_start=None,
                started="yesterday",
                command="python -m reasonrl.main (killed)",
            )
        )
    )
    run_job(config, workdir)
    assert (
        f"taking over the lock of a run that is gone (host {socket.gethostname()}, "
        f"pid {gone.pid}" in capsys.readouterr().err
    )
    assert not (workdir / LOCK_FILE).exists()


def test_lock_is_taken_by_process_zero_only(tmp_path, monkeypatch):
    import jax

    monkeypatch.setattr(jax, "process_index", lambda: 1)
    with lock_workdir(tmp_path):
        assert not (tmp_path / LOCK_FILE).exists()


def test_url_workdir_is_refused_before_anything_is_written(tiny_corpus, tmp_path, monkeypatch):
    """The job writes through the local filesystem: gs://B/x would silently become ./gs:/B/x."""
    from reasonrl.train.config import JobConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(JobConfigError, match="workdir: gs://bucket/run is a URL.*gcsfuse"):
        run_job(_job(tiny_corpus[0]), "gs://bucket/run")
    assert not (tmp_path / "gs:").exists()
