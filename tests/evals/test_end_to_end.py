"""Both binaries on a tiny random checkpoint: outputs, consistency, resume after a kill."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.common import metrics, store

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT_FILES = ("samples.jsonl", "summary.json", "run_config.json", "accuracy.png")
SAMPLE_FIELDS = {
    "id",
    "sample",
    "completion",
    "answer",
    "correct",
    "status",
    "num_tokens",
    "finish_reason",
}


def _env() -> dict:
    """One CPU device (not the test session's 8 virtual ones) and the shared compile cache."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = " ".join(
        flag
        for flag in env.get("XLA_FLAGS", "").split()
        if "xla_force_host_platform_device_count" not in flag
    )
    env["JAX_COMPILATION_CACHE_DIR"] = env.get(
        "REASONRL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "reasonrl", "jax")
    )  # as in tests/conftest.py
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def _command(binary, checkpoint, output_dir, *extra):
    return [
        sys.executable,
        "-m",
        binary,
        f"--checkpoint={checkpoint}",
        f"--output_dir={output_dir}",
        "--limit=3",
        "--num_samples=2",
        "--max_new_tokens=16",
        "--batch_size=2",
        "--grader_workers=1",
        *extra,
    ]


def _run(*args, check=True):
    result = subprocess.run(
        _command(*args), cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def _check_outputs(output_dir: Path, benchmark: str) -> dict:
    """Every output file exists and summary.json agrees with samples.jsonl."""
    for name in OUTPUT_FILES:
        assert (output_dir / name).is_file(), name
    assert not (output_dir / ".reasonrl.lock").exists()  # released when the run ended
    assert list((output_dir / "tensorboard").glob("events.out.tfevents.*"))
    records = store.read_samples(output_dir / "samples.jsonl")
    assert len(records) == 6
    assert all(set(record) == SAMPLE_FIELDS for record in records)
    assert len({(record["id"], record["sample"]) for record in records}) == 6
    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["benchmark"] == benchmark
    assert (summary["num_problems"], summary["num_samples"], summary["total_samples"]) == (3, 2, 6)
    assert set(summary["pass@k"]) == set(summary["maj@k"]) == {"1", "2"}
    assert summary["pass@1"] == pytest.approx(sum(r["correct"] for r in records) / 6)
    assert summary["pass@k"]["1"] == pytest.approx(summary["pass@1"])
    by_problem = {}
    for record in records:
        by_problem.setdefault(record["id"], []).append(record["correct"])
    assert summary["pass@k"]["2"] == pytest.approx(
        sum(metrics.pass_at_k(2, sum(c), 2) for c in by_problem.values()) / 3
    )
    assert summary["mean_completion_tokens"] == pytest.approx(
        sum(r["num_tokens"] for r in records) / 6
    )
    assert summary["truncation_rate"] == pytest.approx(
        sum(r["finish_reason"] == "length" for r in records) / 6
    )
    assert sum(summary["status_counts"].values()) == 6
    assert all(1 <= r["num_tokens"] <= 16 for r in records)
    return summary


@pytest.fixture(scope="module")
def math500_run(tiny_checkpoint, tmp_path_factory):
    """An uninterrupted MATH-500 run (3 problems x 2 samples, 2 batches)."""
    output_dir = tmp_path_factory.mktemp("math500") / "out"
    _run("evals.math500", tiny_checkpoint, output_dir)
    return output_dir


def test_math500_writes_consistent_outputs(math500_run):
    summary = _check_outputs(math500_run, "math500")
    assert sum(group["num_problems"] for group in summary["by_level"].values()) == 3
    assert sum(group["num_problems"] for group in summary["by_subject"].values()) == 3
    config = json.loads((math500_run / "run_config.json").read_text())
    assert config["generation"]["prompt_template"] == "r1"
    assert config["generation"]["num_samples"] == 2


def test_aime_binary_runs_on_a_workdir(tiny_checkpoint, tmp_path):
    """--checkpoint=<reasonrl workdir>: the last stage's export, with the tokenizer inside it."""
    workdir = tmp_path / "workdir"
    shutil.copytree(tiny_checkpoint, workdir / "sft" / "export")
    (workdir / "sft" / "DONE.json").write_text("{}")
    # aime24's first prompts fall into the prompt buckets the MATH-500 run compiled (aime25's
    # second problem alone would need a 1536-token bucket and a long compile).
    _run("evals.aime", workdir, tmp_path / "out", "--benchmark=aime24", "--protocol=r1")
    summary = _check_outputs(tmp_path / "out", "aime24")
    assert "by_level" not in summary
    generation = json.loads((tmp_path / "out" / "run_config.json").read_text())["generation"]
    assert generation["checkpoint"] == str(workdir / "sft" / "export")
    assert generation["tokenizer"] == generation["checkpoint"]
    assert (generation["temperature"], generation["top_p"]) == (0.6, 0.95)  # from --protocol=r1
    assert generation["max_new_tokens"] == 16  # explicit flag wins


def test_resume_after_torn_write_matches_uninterrupted_run(math500_run, tiny_checkpoint, tmp_path):
    """A run cut mid-line in its second batch finishes with the uninterrupted run's samples."""
    expected = (math500_run / "samples.jsonl").read_bytes()
    first_batch = b"".join(expected.splitlines(keepends=True)[:4])
    (tmp_path / "run_config.json").write_bytes((math500_run / "run_config.json").read_bytes())
    (tmp_path / "samples.jsonl").write_bytes(first_batch + expected[len(first_batch) :][:25])
    _run("evals.math500", tiny_checkpoint, tmp_path)
    assert (tmp_path / "samples.jsonl").read_bytes() == expected
    _check_outputs(tmp_path, "math500")


def test_resume_refuses_other_generation_flags(math500_run, tiny_checkpoint, tmp_path):
    shutil.copy(math500_run / "run_config.json", tmp_path / "run_config.json")
    result = _run("evals.math500", tiny_checkpoint, tmp_path, "--temperature=1.0", check=False)
    assert result.returncode == 2
    assert "--temperature: stored 0.6, now 1.0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "samples.jsonl").exists()


@pytest.mark.slow
def test_sigkill_then_restart_matches_uninterrupted_run(math500_run, tiny_checkpoint, tmp_path):
    process = subprocess.Popen(
        _command("evals.math500", tiny_checkpoint, tmp_path),
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples = tmp_path / "samples.jsonl"
    deadline = time.monotonic() + 240
    while not (samples.is_file() and samples.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "summary.json").exists()  # killed before it finished
    _run("evals.math500", tiny_checkpoint, tmp_path)
    assert samples.read_bytes() == (math500_run / "samples.jsonl").read_bytes()
