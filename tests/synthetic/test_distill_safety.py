"""A distillation output is safe: one run at a time (a lock beside it naming its holder), the
teacher's weights fingerprinted, settings checked before anything is written, a corrupt state
line named with its fix, a full disk leaving the previous summary."""

import json
import os
import shutil
import socket

import pytest

from reasonrl.sampling.run_store import ConfigMismatchError
from reasonrl.synthetic import distill_store
from reasonrl.synthetic.distill import DistillJob, SettingsError, output_lock, run_distill
from reasonrl.workdir import DirectoryLock
from tests.sampling.full_disk import fill_disk_for
from tests.synthetic import test_distill
from tests.synthetic.conftest import write_problems
from tests.synthetic.test_distill import SETTINGS, _cli, _copy_run, _job, always_correct

full_run = test_distill.full_run  # the module-scoped fixture: an uninterrupted run


def _error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    return line


def test_a_second_run_on_the_output_refuses_naming_the_holder(teacher_dir, tmp_path):
    """This test process holds the output's lock; the binary, another process, must not write."""
    problems = write_problems(tmp_path / "problems.jsonl")
    output = tmp_path / "out" / "distilled.jsonl"
    with DirectoryLock(output.parent, lock_name=".distilled.jsonl.lock") as lock:
        assert output_lock(output).path == lock.path
        line = _error_line(
            _cli(
                f"--teacher={teacher_dir}",
                f"--problems={problems}",
                f"--output={output}",
                "--max_new_tokens=16",
            )
        )
        assert (
            f"(host {socket.gethostname()}, pid {os.getpid()}, started "
            f"{lock.holder.started}" in line
        )
    assert not any(output.parent.iterdir())  # nothing written, the lock released


def test_other_teacher_weights_at_the_same_path_are_refused(teacher_dir, tmp_path):
    teacher = shutil.copytree(teacher_dir, tmp_path / "teacher")
    problems = write_problems(tmp_path / "problems.jsonl")
    output = tmp_path / "out.jsonl"
    job = DistillJob(
        teacher=str(teacher),
        tokenizer=str(teacher),
        settings=SETTINGS,
        problems=str(problems),
        limit=2,
    )
    run_distill(job, output, grader=always_correct)
    assert not (tmp_path / ".out.jsonl.lock").exists()
    weights = next(teacher.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(
        ConfigMismatchError,
        match=r"out.jsonl was made with different settings"
        r".*:\n  --checkpoint_sha256: stored '[0-9a-f]{64}', now '[0-9a-f]{64}'$",
    ):
        run_distill(job, output, grader=always_correct)


def test_a_state_without_the_digest_resumes(full_run, teacher_dir, tmp_path):
    problems, output = full_run
    copy = _copy_run(output, tmp_path / "out.jsonl")
    state = distill_store.state_path(copy)
    header, *entries = state.read_text().splitlines(True)
    config = json.loads(header)["config"]
    del config["checkpoint_sha256"]
    state.write_text(json.dumps({"config": {**config, "limit": 0}}) + "\n" + "".join(entries))
    assert run_distill(_job(teacher_dir, problems), copy)["kept_records"] == 20


def test_a_corrupt_state_line_is_named_and_its_fix_works(full_run, teacher_dir, tmp_path):
    problems, output = full_run
    copy = _copy_run(output, tmp_path / "out.jsonl")
    state = distill_store.state_path(copy)
    lines = state.read_text().splitlines(True)
    for bad in ("{not json\n", '{"batch": 1}\n', '{"batch": 2, "output_bytes": 1}\n'):
        state.write_text("".join(lines[:2] + [bad] + lines[3:]))
        with pytest.raises(
            distill_store.OutputError,
            match=rf"out.jsonl.state.jsonl:3: .*; delete this line and the ones "
            rf"after it \(a rerun distills those batches again\), or delete "
            rf"{copy} and out.jsonl.state.jsonl to start over$",
        ):
            run_distill(_job(teacher_dir, problems), copy, grader=always_correct)
    state.write_text("".join(lines[:2]))  # the fix
    run_distill(_job(teacher_dir, problems), copy, grader=always_correct)
    assert copy.read_bytes() == output.read_bytes()
    state.write_text("{}\n")
    with pytest.raises(
        distill_store.OutputError,
        match=r"state.jsonl:1: not a distillation "
        r"state header",
    ):
        run_distill(_job(teacher_dir, problems), copy)


def test_settings_are_checked_before_anything_is_written(teacher_dir, tmp_path):
    with pytest.raises(
        SettingsError,
        match=r"--limit must be >= 1 \(leave it unset for every "
        r"problem\), got 0",
    ):
        DistillJob(teacher="t", tokenizer="t", settings=SETTINGS, benchmark="aime24", limit=0)
    problems = write_problems(tmp_path / "problems.jsonl")
    output = tmp_path / "out" / "distilled.jsonl"
    line = _error_line(
        _cli(
            f"--teacher={teacher_dir}",
            f"--problems={problems}",
            f"--output={output}",
            "--max_new_tokens=5000",
        )
    )
    assert line.startswith(
        "error: max_new_tokens=5000 does not fit the model's context of 4096 tokens"
    )
    assert line.endswith("; lower --max_new_tokens")
    assert not output.parent.exists()


def test_a_full_disk_leaves_the_previous_summary(full_run, tmp_path, monkeypatch):
    _, output = full_run
    copy = _copy_run(output, tmp_path / "out.jsonl")
    previous = distill_store.summary_path(output).read_bytes()
    distill_store.summary_path(copy).write_bytes(previous)
    fill_disk_for(monkeypatch, distill_store.summary_path(copy).name)
    with pytest.raises(OSError, match="No space left on device") as raised:
        distill_store.write_summary(copy, {"kept_records": 0, "note": "x" * 1000})
    assert raised.value.filename == str(distill_store.summary_path(copy))
    assert distill_store.summary_path(copy).read_bytes() == previous
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "out.jsonl",
        "out.jsonl.state.jsonl",
        "out.jsonl.summary.json",
    ]
