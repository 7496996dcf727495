"""The bad-input sweep: every binary, given a mistake a user makes, answers with one line
`error: ...` and exit status 2 — never a traceback, never a silent success.

Each case runs the real binary in a subprocess (slow: each start imports JAX)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_binary(module: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("REASONRL_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_clear_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, no traceback, one `error:` line containing every fragment; returns that line."""
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 2, (result.returncode, result.stderr[-4000:])
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-4000:]
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-4000:])
    return lines[0]


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sft") / "sft.jsonl"
    path.write_text(
        "".join(json.dumps({"question": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(40))
    )
    return path


def job_args(mode, tiny_corpus, sft_path, workdir, *extra):
    corpus, tokenizer = tiny_corpus
    return (
        "reasonrl.main",
        f"--config=tests/reliability/sweep_job.py:{mode},{corpus},{tokenizer},{sft_path}",
        f"--workdir={workdir}",
        *extra,
    )


# ------------------------------------------------------------------ the job binary


def test_unknown_config_key_on_the_command_line(tiny_corpus, sft_file, tmp_path):
    result = run_binary(
        *job_args("ok", tiny_corpus, sft_file, tmp_path, "--config.stages.pretrain.train.stepz=3")
    )
    assert_clear_error(result, "stepz")


def test_missing_config_file(tmp_path):
    assert_clear_error(
        run_binary("reasonrl.main", f"--config={tmp_path}/nope.py", f"--workdir={tmp_path}"),
        "nope.py",
    )


def test_config_file_with_a_syntax_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(:\n")
    assert_clear_error(
        run_binary("reasonrl.main", f"--config={bad}", f"--workdir={tmp_path}"), "bad.py"
    )


def test_bad_path_of_the_second_stage_fails_before_the_first_trains(tiny_corpus, tmp_path):
    result = run_binary(*job_args("ok", tiny_corpus, tmp_path / "missing.jsonl", tmp_path / "w"))
    assert_clear_error(result, "stages.sft", "missing.jsonl")
    assert not (tmp_path / "w" / "pretrain" / "checkpoints").exists()


def test_empty_data_file(tiny_corpus, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert_clear_error(
        run_binary(*job_args("ok", tiny_corpus, empty, tmp_path / "w")), "empty.jsonl"
    )


def test_missing_field_in_a_later_record(tiny_corpus, sft_file, tmp_path):
    lines = sft_file.read_text().splitlines()
    lines[25] = json.dumps({"question": "1+1="})
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n")
    assert_clear_error(
        run_binary(*job_args("ok", tiny_corpus, broken, tmp_path / "w")),
        "broken.jsonl:26",
        "answer",
    )


def test_malformed_json_in_a_later_record(tiny_corpus, sft_file, tmp_path):
    lines = sft_file.read_text().splitlines()
    lines[30] = '{"question": "1+1=", "answer": '
    broken = tmp_path / "malformed.jsonl"
    broken.write_text("\n".join(lines) + "\n")
    assert_clear_error(
        run_binary(*job_args("ok", tiny_corpus, broken, tmp_path / "w")), "malformed.jsonl:31"
    )


def test_tokenizer_larger_than_the_model_vocabulary(tiny_corpus, sft_file, tmp_path):
    assert_clear_error(run_binary(*job_args("small_vocab", tiny_corpus, sft_file, tmp_path)), "64")


def test_non_finite_loss_stops_with_one_line(tiny_corpus, sft_file, tmp_path):
    assert_clear_error(
        run_binary(*job_args("diverge", tiny_corpus, sft_file, tmp_path)), "non-finite"
    )


# ------------------------------------------------------------------ the eval binaries


@pytest.fixture(scope="module")
def eval_checkpoint(tiny_checkpoint):
    """A tiny random Hugging Face checkpoint with its tokenizer (tests/evals/conftest.py)."""
    return tiny_checkpoint


@pytest.mark.parametrize(
    "flag, fragment",
    [
        ("--limit=0", "--limit"),
        ("--num_samples=0", "--num_samples"),
        ("--max_new_tokens=0", "--max_new_tokens"),
        ("--max_new_tokens=100000", "--max_new_tokens"),
    ],
)
def test_eval_flags_are_checked_before_anything_is_written(
    eval_checkpoint, tmp_path, flag, fragment
):
    out = tmp_path / "out"
    result = run_binary(
        "evals.math500", f"--checkpoint={eval_checkpoint}", f"--output_dir={out}", flag
    )
    assert_clear_error(result, fragment)
    assert not (out / "run_config.json").exists()


def test_eval_on_a_missing_checkpoint(tmp_path):
    assert_clear_error(
        run_binary("evals.aime", f"--checkpoint={tmp_path}/none", f"--output_dir={tmp_path}/out"),
        "none",
    )


def _copy_checkpoint(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_eval_on_a_truncated_safetensors_file(eval_checkpoint, tmp_path):
    checkpoint = _copy_checkpoint(eval_checkpoint, tmp_path / "ckpt")
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert_clear_error(
        run_binary(
            "evals.math500",
            f"--checkpoint={checkpoint}",
            f"--output_dir={tmp_path}/out",
            "--limit=1",
            "--max_new_tokens=4",
        ),
        "model.safetensors",
    )


def test_eval_on_an_unsupported_architecture(eval_checkpoint, tmp_path):
    checkpoint = _copy_checkpoint(eval_checkpoint, tmp_path / "ckpt")
    config = json.loads((checkpoint / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    config["model_type"] = "gpt2"
    (checkpoint / "config.json").write_text(json.dumps(config))
    assert_clear_error(
        run_binary(
            "evals.math500",
            f"--checkpoint={checkpoint}",
            f"--output_dir={tmp_path}/out",
            "--limit=1",
            "--max_new_tokens=4",
        ),
        "GPT2LMHeadModel",
    )


def test_eval_with_a_corrupt_samples_line(eval_checkpoint, tmp_path):
    out = tmp_path / "out"
    args = (
        f"--checkpoint={eval_checkpoint}",
        f"--output_dir={out}",
        "--limit=2",
        "--max_new_tokens=4",
        "--batch_size=1",
    )
    first = run_binary("evals.math500", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    samples = out / "samples.jsonl"
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(["{not json"] + lines[1:]) + "\n")
    assert_clear_error(run_binary("evals.math500", *args), "samples.jsonl:1")


# ------------------------------------------------------------------ data and distillation


def test_distill_with_a_malformed_problems_file(eval_checkpoint, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text('{"problem": "1+1", "answer": "2"}\nnot json\n')
    result = run_binary(
        "reasonrl.synthetic.distill",
        f"--teacher={eval_checkpoint}",
        f"--problems={problems}",
        f"--output={tmp_path}/out.jsonl",
    )
    assert_clear_error(result, "problems.jsonl:2")


def test_train_tokenizer_on_a_missing_file(tmp_path):
    result = run_binary(
        "reasonrl.data.train_tokenizer",
        f"--input={tmp_path}/none.txt",
        "--vocab_size=100",
        f"--output={tmp_path}/tok",
    )
    assert_clear_error(result, "none.txt")
