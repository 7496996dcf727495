"""samples.jsonl survives a torn last line and names a corrupt one; run_config.json refuses
changed generation flags."""

import json

import pytest

from evals.common import store
from reasonrl.sampling import run_store


def record(problem_id, sample):
    """A samples.jsonl record with every field."""
    return {
        "id": problem_id,
        "sample": sample,
        "completion": "x",
        "answer": None,
        "correct": False,
        "status": "no_answer",
        "num_tokens": 1,
        "finish_reason": "stop",
    }


def test_torn_last_line_is_cut_before_appending(tmp_path):
    path = tmp_path / store.SAMPLES_FILE
    store.append_samples(path, [record("a", 0), record("a", 1)])
    with open(path, "a") as handle:
        handle.write('{"id": "b", "sam')
    assert store.read_samples(path) == [record("a", 0), record("a", 1)]
    assert store.open_samples(path) == {("a", 0), ("a", 1)}
    store.append_samples(path, [record("b", 0)])
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [record("a", 0), record("a", 1), record("b", 0)]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("{not json", r"samples.jsonl:2: not a JSON line"),
        ('["a", 1]', r"samples.jsonl:2: not a sample record \(a list\)"),
        (
            '{"id": "a", "sample": 1}',
            r"samples.jsonl:2: not a sample record \(no completion, answer, "
            r"correct, status, num_tokens, finish_reason\)",
        ),
        (json.dumps(record("a", 0)), r"samples.jsonl:2: problem 'a' sample 0 repeats line 1"),
    ],
)
def test_a_corrupt_complete_line_is_named_with_the_fix(tmp_path, bad_line, message):
    path = tmp_path / store.SAMPLES_FILE
    path.write_text(
        json.dumps(record("a", 0))
        + "\n"
        + bad_line
        + "\n"
        + json.dumps(record("b", 0))
        + "\n"
        + '{"id": "b", "sam'
    )
    for read in (store.open_samples, store.read_samples):
        with pytest.raises(
            store.OutputFileError,
            match=message + r".*; delete this line \(a "
            r"rerun samples it again\) or the output directory to start over$",
        ):
            read(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # the fix: delete the line
    assert store.open_samples(path) == {("a", 0), ("b", 0)}


def test_missing_samples_file_is_empty(tmp_path):
    assert store.open_samples(tmp_path / "none.jsonl") == set()
    assert store.read_samples(tmp_path / "none.jsonl") == []


def test_run_config_mismatch_is_refused(tmp_path):
    generation = {"temperature": 0.6, "num_samples": 4}
    store.check_or_write_run_config(tmp_path, generation, {"grader_workers": 2})
    # Same generation settings, other runtime settings: fine.
    store.check_or_write_run_config(tmp_path, dict(generation), {"grader_workers": 8})
    with pytest.raises(run_store.ConfigMismatchError, match=r"--temperature: stored 0.6, now 1.0"):
        store.check_or_write_run_config(tmp_path, {**generation, "temperature": 1.0}, {})
    stored = json.loads((tmp_path / store.RUN_CONFIG_FILE).read_text())
    assert stored == {"generation": generation, "other": {"grader_workers": 2}}


def test_unreadable_run_config_is_named(tmp_path):
    (tmp_path / store.RUN_CONFIG_FILE).write_text('{"other": {}}\n')
    with pytest.raises(store.OutputFileError, match=r"run_config.json: not a run config"):
        store.check_or_write_run_config(tmp_path, {"seed": 0}, {})
