"""`python -m evals.spectrum` on a tiny random checkpoint: its files, and one-line errors."""

import json
import subprocess
import sys

from reasonrl.spectrum.evaluate import HEADLINE
from tests.evals.test_end_to_end import REPO_ROOT, _env


def _spectrum(checkpoint, output_dir, *extra):
    command = [
        sys.executable,
        "-m",
        "evals.spectrum",
        f"--checkpoint={checkpoint}",
        f"--output_dir={output_dir}",
        "--limit=3",
        "--num_samples=4",
        "--max_new_tokens=8",
        *extra,
    ]
    return subprocess.run(
        command, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )


def test_writes_reports(tiny_checkpoint, tmp_path):
    output_dir = tmp_path / "out"
    result = _spectrum(tiny_checkpoint, output_dir, "--format=chat")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((output_dir / "summary.json").read_text())
    assert set(summary["metrics"]) == set(HEADLINE)
    assert summary["num_tasks"] == 3 and summary["settings"]["format"] == "chat"
    records = [
        json.loads(line) for line in (output_dir / "samples.jsonl").read_text().split("\n") if line
    ]
    assert len(records) == 3 and all(len(r["samples"]) == 4 for r in records)
    assert (output_dir / "spectrum.png").is_file()
    assert list((output_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert not (output_dir / ".reasonrl.lock").exists()


def test_bad_input_is_one_line_before_writing(tiny_checkpoint, tmp_path):
    bad_suite = tmp_path / "suite.jsonl"
    bad_suite.write_text('{"id": "a", "samples": [{"output": "x"}], "queries": []}\n')
    for extra, message in (
        (("--format=xml",), "format"),
        ((f"--suite={bad_suite}",), f"{bad_suite}:1: queries must be a non-empty list"),
        (("--num_samples=0",), "num_samples: must be >= 1"),
    ):
        output_dir = tmp_path / f"out{len(message)}"
        result = _spectrum(tiny_checkpoint, output_dir, *extra)
        assert result.returncode != 0
        assert message in result.stderr, result.stderr[-2000:]
        assert not output_dir.exists()
