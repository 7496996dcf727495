"""The eval binaries in 2 processes x 4 CPU devices against 1 process x 8 devices: one
samples.jsonl (each (id, sample) once) and one summary.json, equal to the single process's; each
process grades only its share of every batch; process 0's errors and resume state reach the
other process. A few runs of ~15-30 s each on two cores: slow suite."""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.evals.conftest import _checkpoint
from tests.parallel.test_multiprocess import run_job_processes

LIMIT, SAMPLES, BATCH = 2, 2, 1
GRADED = re.compile(r"grader: process (\d+) of (\d+) graded rows (\d+):(\d+) \((\d+) of (\d+)\)")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_corpus):
    """A tiny random tiny-qwen3 checkpoint with its tokenizer.model."""
    return _checkpoint(tmp_path_factory.mktemp("ckpt"), tiny_corpus[1], 4096)


def run_eval(checkpoint, output_dir, num_processes, *extra, binary="evals.math500"):
    """Runs the eval binary in `num_processes` x (8 / num_processes) devices; the results."""
    argv = [
        sys.executable,
        "-m",
        binary,
        f"--checkpoint={checkpoint}",
        f"--output_dir={output_dir}",
        f"--limit={LIMIT}",
        f"--num_samples={SAMPLES}",
        f"--batch_size={BATCH}",
        "--max_new_tokens=12",
        "--temperature=1.0",
        "--grader_workers=1",
        "--mesh_data=-1",  # rows over all 8 devices, params replicated: no collective per token
        "--mesh_fsdp=1",
        "--verbosity=0",  # INFO: the grader's "graded rows" lines
        *extra,
    ]
    return run_job_processes(num_processes, argv, timeout=300)


def succeeded(results):
    for i, result in enumerate(results):
        assert result.returncode == 0, f"process {i} failed:\n{result.stderr[-4000:]}"
    return results


def samples(output_dir) -> list[dict]:
    lines = (output_dir / "samples.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def printed_json(stdout: str) -> str:
    """The JSON document a binary printed: from its first line that is "{" on."""
    lines = stdout.splitlines()
    return "\n".join(lines[lines.index("{") :])


def by_pair(records) -> dict[tuple[str, int], dict]:
    return {(r["id"], r["sample"]): r for r in records}


@pytest.fixture(scope="module")
def runs(checkpoint, tmp_path_factory):
    """(2-process output dir, its results, 1-process output dir)."""
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    results = succeeded(run_eval(checkpoint, two, 2))
    succeeded(run_eval(checkpoint, one, 1))
    return two, results, one


@pytest.mark.slow
def test_two_processes_write_one_output_equal_to_one_process(runs):
    two, results, one = runs
    records = samples(two)
    assert len(records) == LIMIT * SAMPLES  # none lost, none written twice
    assert len(by_pair(records)) == LIMIT * SAMPLES
    assert by_pair(records) == by_pair(samples(one))
    summary = json.loads((two / "summary.json").read_text())
    assert summary == json.loads((one / "summary.json").read_text())
    assert summary["total_samples"] == LIMIT * SAMPLES
    # Process 0 prints the summary (after jax's own "[Gloo] ..." lines); process 1 does not.
    assert json.loads(printed_json(results[0].stdout)) == summary
    assert "pass@1" not in results[1].stdout


@pytest.mark.slow
def test_each_process_grades_only_its_share(runs):
    _, results, _ = runs
    batches = [min(BATCH, LIMIT - start) * SAMPLES for start in range(0, LIMIT, BATCH)]
    for index, result in enumerate(results):
        calls = [tuple(map(int, m)) for m in GRADED.findall(result.stderr)]
        assert [total for *_, total in calls] == batches, calls
        for process, count, start, stop, rows, total in calls:
            assert (process, count) == (index, 2)
            share = -(-total // 2)
            assert (start, stop) == (min(index * share, total), min((index + 1) * share, total))
            assert rows == stop - start


@pytest.mark.slow
def test_two_processes_resume_what_process_0_read(runs, checkpoint, tmp_path):
    """A run cut after its first batch: process 0 reads what is done, both processes generate
    only the missing batch, and the output ends equal to the uninterrupted one."""
    import shutil

    two, _, one = runs
    output = tmp_path / "resumed"
    shutil.copytree(two, output)
    (output / "summary.json").unlink()
    lines = (output / "samples.jsonl").read_text().splitlines(keepends=True)
    (output / "samples.jsonl").write_text("".join(lines[: BATCH * SAMPLES]))
    results = succeeded(run_eval(checkpoint, output, 2))
    for result in results:  # the last batch only: LIMIT - BATCH problems
        totals = [int(m[-1]) for m in GRADED.findall(result.stderr)]
        assert totals == [(LIMIT - BATCH) * SAMPLES]
    assert by_pair(samples(output)) == by_pair(samples(one))
    assert len(samples(output)) == LIMIT * SAMPLES
    assert json.loads((output / "summary.json").read_text()) == json.loads(
        (one / "summary.json").read_text()
    )


@pytest.mark.slow
def test_an_error_of_process_0_stops_both(runs, checkpoint):
    """Other generation flags on the same output: process 0 refuses (run_config.json), and
    process 1, which never reads the directory, exits with the same error instead of waiting."""
    two, _, _ = runs
    before = (two / "samples.jsonl").read_bytes()
    results = run_eval(checkpoint, two, 2, "--seed=7")
    for result in results:
        assert result.returncode == 2, result.stderr[-3000:]
        assert "holds a run with different generation flags" in result.stderr
        assert "--seed: stored 0, now 7" in result.stderr
    assert (two / "samples.jsonl").read_bytes() == before
