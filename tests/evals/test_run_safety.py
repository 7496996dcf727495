"""An eval's output directory is safe: one run at a time (a lock naming its holder), the
checkpoint's weights fingerprinted, flags checked before anything is written, corrupt lines and
full disks reported in one line (exit 2) without torn files.

Runs resume a finished output (samples.jsonl already complete), so no model is loaded."""

import json
import logging
import os
import shutil
import socket
import subprocess
import sys

import pytest

from evals.common import runner, store
from reasonrl.sampling import problem_runs
from reasonrl.sampling.problem_runs import RuntimeSettings, SettingsError
from reasonrl.sampling.run_store import ConfigMismatchError
from reasonrl.workdir import LOCK_FILE, DirectoryLock
from reasonrl.workdir.lock import LockHolder
from tests.evals.test_end_to_end import REPO_ROOT, _command, _env, _run
from tests.evals.test_store import record

# _command's flags: the first 3 MATH-500 problems, 2 samples each.
LIMIT, NUM_SAMPLES = 3, 2


def finished_output(output_dir):
    """An output directory whose samples.jsonl holds every sample of _command's run."""
    output_dir.mkdir(parents=True)
    store.append_samples(
        output_dir / store.SAMPLES_FILE,
        [
            record(problem.id, sample)
            for problem in runner.select_problems("math500", LIMIT)
            for sample in range(NUM_SAMPLES)
        ],
    )
    return output_dir


def generation(checkpoint, **overrides):
    """The GenerationSettings of _command's run on ``checkpoint``."""
    return runner.GenerationSettings(
        **{
            **dict(
                checkpoint=str(checkpoint),
                tokenizer=str(checkpoint),
                benchmark="math500",
                prompt_template="r1",
                chat_template="chatml",
                num_samples=NUM_SAMPLES,
                temperature=0.6,
                top_p=0.95,
                top_k=0,
                max_new_tokens=16,
                seed=0,
                limit=LIMIT,
                batch_size=2,
                dtype="float32",
            ),
            **overrides,
        }
    )


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run loaded the model")

    monkeypatch.setattr(problem_runs, "load_model", refuse)


def _error_line(result) -> str:
    """The one `error: ...` line of a binary that exited 2 without a traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    return line


# --------------------------------------------------------------------------- one run at a time


def test_a_second_run_on_the_output_refuses_naming_the_holder(tiny_checkpoint, tmp_path):
    """This test process holds the lock; the binary, another process, must not write."""
    output_dir = finished_output(tmp_path / "out")
    before = (output_dir / store.SAMPLES_FILE).read_bytes()
    with DirectoryLock(output_dir, purpose="a test") as lock:
        line = _error_line(_run("evals.math500", tiny_checkpoint, output_dir, check=False))
        assert (
            f"{output_dir} is in use by another run (host {socket.gethostname()}, pid "
            f"{os.getpid()}, started {lock.holder.started}" in line
        )
    assert (output_dir / store.SAMPLES_FILE).read_bytes() == before
    assert not (output_dir / store.RUN_CONFIG_FILE).exists()


def test_the_lock_of_a_dead_run_is_taken_over_with_a_warning(tiny_checkpoint, tmp_path):
    output_dir = finished_output(tmp_path / "out")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = LockHolder(socket.gethostname(), dead.pid, None, "2026-01-01T00:00:00+00:00", "eval")
    (output_dir / LOCK_FILE).write_text(json.dumps(holder.__dict__))
    result = _run("evals.math500", tiny_checkpoint, output_dir)
    assert (
        f"taking over the lock of a run that is gone (host {socket.gethostname()}, pid "
        f"{dead.pid}" in result.stderr
    )
    assert json.loads((output_dir / "summary.json").read_text())["total_samples"] == 6
    assert not (output_dir / LOCK_FILE).exists()


# --------------------------------------------------------------------------- the weights


def test_other_weights_at_the_same_path_are_refused(tiny_checkpoint, tmp_path, no_model):
    checkpoint = shutil.copytree(tiny_checkpoint, tmp_path / "checkpoint")
    output_dir = finished_output(tmp_path / "out")
    summary = runner.run_eval(generation(checkpoint), RuntimeSettings(), str(output_dir))
    assert summary["total_samples"] == LIMIT * NUM_SAMPLES
    stored = json.loads((output_dir / store.RUN_CONFIG_FILE).read_text())["generation"]
    assert stored["checkpoint_sha256"] == problem_runs.checkpoint_digest(checkpoint)
    assert not (output_dir / LOCK_FILE).exists()
    runner.run_eval(generation(checkpoint), RuntimeSettings(), str(output_dir))  # same: resumes
    weights = next(checkpoint.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(
        ConfigMismatchError,
        match=r"holds a run with different generation flags"
        r".*:\n  --checkpoint_sha256: stored '[0-9a-f]{64}', now '[0-9a-f]{64}'$",
    ):
        runner.run_eval(generation(checkpoint), RuntimeSettings(), str(output_dir))


def test_a_run_config_without_the_digest_resumes_with_a_warning(
    tiny_checkpoint, tmp_path, no_model, caplog
):
    output_dir = finished_output(tmp_path / "out")
    settings = generation(tiny_checkpoint)
    runner.run_eval(settings, RuntimeSettings(), str(output_dir))
    path = output_dir / store.RUN_CONFIG_FILE
    config = json.loads(path.read_text())
    del config["generation"]["checkpoint_sha256"]  # as written before the digest existed
    path.write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        runner.run_eval(settings, RuntimeSettings(), str(output_dir))
    assert any(
        f"{path} was written before runs recorded checkpoint_sha256" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )


# --------------------------------------------------------------------------- flags, lines


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"limit": 0}, r"--limit must be >= 1 \(leave it unset for every problem\), got 0"),
        ({"num_samples": 0}, r"--num_samples must be >= 1, got 0"),
        ({"max_new_tokens": 0}, r"--max_new_tokens must be >= 1, got 0"),
        ({"batch_size": -2}, r"--batch_size must be >= 1, got -2"),
    ],
)
def test_settings_below_one_are_refused(tiny_checkpoint, overrides, message):
    with pytest.raises(SettingsError, match=message):
        generation(tiny_checkpoint, **overrides)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--limit=0"], "error: --limit must be >= 1 (leave it unset for every problem), got 0"),
        (
            ["--max_new_tokens=5000"],
            "error: max_new_tokens=5000 does not fit the model's context of 4096 tokens",
        ),
        (["--checkpoint={missing}"], "error: --checkpoint '{missing}' does not exist"),
        (["--tokenizer={missing}"], "error: --tokenizer: cannot load a tokenizer from '{missing}'"),
        (["surplus"], "error: unexpected arguments: ['surplus']"),
    ],
)
def test_bad_flags_are_one_line_and_write_nothing(tiny_checkpoint, tmp_path, extra, message):
    missing = tmp_path / "missing"
    output_dir = tmp_path / "out"
    result = _run(
        "evals.math500",
        tiny_checkpoint,
        output_dir,
        *(flag.format(missing=missing) for flag in extra),
        check=False,
    )
    assert _error_line(result).startswith(message.format(missing=missing))
    assert not output_dir.exists()  # a corrected rerun starts afresh


def test_a_corrupt_samples_line_stops_the_run(tiny_checkpoint, tmp_path, no_model):
    output_dir = finished_output(tmp_path / "out")
    samples = output_dir / store.SAMPLES_FILE
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:2] + ['{"id": "x"}\n'] + lines[2:]))
    with pytest.raises(store.OutputFileError, match=r"samples.jsonl:3: not a sample record"):
        runner.run_eval(generation(tiny_checkpoint), RuntimeSettings(), str(output_dir))


# --------------------------------------------------------------------------- a full disk


def test_a_full_disk_is_one_line_and_leaves_no_torn_summary(tiny_checkpoint, tmp_path):
    output_dir = finished_output(tmp_path / "out")
    command = _command("evals.math500", tiny_checkpoint, output_dir)
    result = subprocess.run(
        [sys.executable, "-m", "tests.sampling.full_disk", "summary.json", *command[2:]],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = _error_line(result)
    assert "No space left on device" in line and str(output_dir / "summary.json") in line
    assert not (output_dir / "summary.json").exists()
    assert sorted(path.name for path in output_dir.iterdir()) == [
        store.RUN_CONFIG_FILE,
        store.SAMPLES_FILE,
    ]  # no temporary file, no lock left
