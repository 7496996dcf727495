"""samples.jsonl survives a torn last line; run_config.json refuses changed generation flags."""

import json

import pytest

from evals.common import store
from reasonrl.sampling import run_store


def test_torn_last_line_is_cut_before_appending(tmp_path):
    path = tmp_path / store.SAMPLES_FILE
    store.append_samples(path, [{"id": "a", "sample": 0}, {"id": "a", "sample": 1}])
    with open(path, "a") as handle:
        handle.write('{"id": "b", "sam')
    assert store.read_samples(path) == [{"id": "a", "sample": 0}, {"id": "a", "sample": 1}]
    assert store.open_samples(path) == {("a", 0), ("a", 1)}
    store.append_samples(path, [{"id": "b", "sample": 0}])
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": "a", "sample": 0}, {"id": "a", "sample": 1}, {"id": "b", "sample": 0}]


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
