"""The four subcommands on a tiny proxy: outputs the sft task reads, resumption after a kill,
refused changes, clear errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl.sampling import run_store
from reasonrl.sampling.problem_runs import RuntimeSettings, SettingsError
from reasonrl.synthetic.prismatic import feature_store
from reasonrl.synthetic.prismatic.feature_run import FeatureJob, run_features, score_features
from reasonrl.synthetic.prismatic.features import RenderSettings
from reasonrl.synthetic.prismatic.gvendi import g_vendi
from reasonrl.synthetic.prismatic.label_run import LabelJob, LabelSettings, run_label
from reasonrl.synthetic.prismatic.records import RecordFileError
from reasonrl.synthetic.prismatic.select_run import SelectJob, run_select
from tests.helpers import read_jsonl
from tests.synthetic.test_prismatic_features import DIM, MAX_LENGTH, RECORDS
from tests.synthetic.test_prismatic_self_consistency import numeric_equivalence

RUNTIME = RuntimeSettings(mesh_shape=(8, 1, 1))  # the features test's mesh: compiled once


@pytest.fixture()
def data_file(tmp_path):
    path = tmp_path / "data.jsonl"
    lines = [json.dumps({"id": f"e{i}", **record}) for i, record in enumerate(RECORDS * 2)]
    path.write_text("\n".join(lines) + "\n")
    return path


def feature_job(teacher_dir, data_file, **changes):
    values = dict(
        proxy=str(teacher_dir),
        tokenizer=str(teacher_dir),
        data=str(data_file),
        render=RenderSettings(max_length=MAX_LENGTH),
        id_field="id",
        seed=3,
        dim=DIM,
    )
    return FeatureJob(**{**values, **changes})


def test_features_resume_after_a_kill_and_refuse_other_settings(teacher_dir, data_file, tmp_path):
    job = feature_job(teacher_dir, data_file)
    whole = tmp_path / "whole"
    summary = run_features(job, whole, RUNTIME, batch_size=8)
    stored = feature_store.load_features(whole)
    assert stored.ids == [f"e{i}" for i in range(14)] and stored.features.shape == (14, DIM)
    assert summary["g_vendi"] == pytest.approx(g_vendi(stored.features))
    assert summary == json.loads((whole / "summary.json").read_text())
    # A run killed after its first batch resumes with another batch size: same features.
    killed = tmp_path / "killed"
    run_features(job, killed, RUNTIME, batch_size=8)
    state = (killed / "state.jsonl").read_bytes().split(b"\n")
    (killed / "state.jsonl").write_bytes(b"\n".join(state[:2]) + b"\n" + state[2][:10])
    assert run_features(job, killed, RUNTIME, batch_size=8) == {**summary, "features": str(killed)}
    np.testing.assert_array_equal(feature_store.load_features(killed).features, stored.features)
    with pytest.raises(run_store.ConfigMismatchError, match="--seed: stored 3, now 4"):
        run_features(feature_job(teacher_dir, data_file, seed=4), whole, RUNTIME)
    assert score_features(whole)["valid_examples"] == 14


def test_select_writes_sft_records_and_refuses_changes(teacher_dir, data_file, tmp_path):
    features = tmp_path / "features"
    run_features(feature_job(teacher_dir, data_file), features, RUNTIME, batch_size=8)
    output = tmp_path / "selected.jsonl"
    job = SelectJob(features=str(features), budget=5, num_clusters=3, random_subsets=4)
    summary = run_select(job, output)
    records = read_jsonl(output)
    originals = {r["id"]: r for r in read_jsonl(data_file)}
    assert len(records) == 5 and all(originals[r["id"]] == r for r in records)
    assert sum(summary["cluster_quotas"]) == 5 and sum(summary["cluster_sizes"]) == 14
    stored = feature_store.load_features(features)
    mask = np.isin(stored.ids, [r["id"] for r in records])
    assert summary["g_vendi_selected"] == pytest.approx(g_vendi(stored.features, mask))
    assert 1.0 <= summary["g_vendi_random_subsets"]["mean"] <= 5.0
    tokenizer = data_lib.load_tokenizer(teacher_dir)
    task = data_lib.SftTask(
        data_lib.SftTask.Config(prompt_field="question", response_field="answer"), tokenizer
    )
    assert task(records[0])["loss_mask"].any()
    assert run_select(job, output) == summary  # a rerun returns the stored result
    with pytest.raises(run_store.ConfigMismatchError, match="--budget: stored 5, now 6"):
        run_select(SelectJob(features=str(features), budget=6, num_clusters=3), output)
    with pytest.raises(SettingsError, match="--budget=15 exceeds the 14"):
        run_select(SelectJob(features=str(features), budget=15), tmp_path / "other.jsonl")
    with pytest.raises(SettingsError, match="--num_clusters=15 exceeds the 14"):
        run_select(SelectJob(features=str(features), budget=3, num_clusters=15), output)
    state = features / "state.jsonl"
    full_state = state.read_bytes()
    state.write_bytes(b"\n".join(full_state.split(b"\n")[:2]) + b"\n")  # batch 1 unfinished
    with pytest.raises(SettingsError, match="holds 8 of its 14 examples"):
        run_select(job, tmp_path / "early.jsonl")
    state.write_bytes(full_state)
    data_file.write_text(data_file.read_text() + json.dumps({"id": "new", **RECORDS[0]}) + "\n")
    with pytest.raises(SettingsError, match="changed since the features"):
        run_select(job, tmp_path / "again.jsonl")


def test_label_reports_every_problem(teacher_dir, tmp_path):
    problems = tmp_path / "problems.jsonl"
    rows = [{"problem": f"{a}+{a}=", "answer": str(2 * a)} for a in range(3)]
    problems.write_text("".join(json.dumps(row) + "\n" for row in rows))
    settings = LabelSettings(
        prompt_template="plain", num_samples=4, max_new_tokens=6, batch_size=2, temperature=1.0
    )
    job = LabelJob(
        str(teacher_dir), str(teacher_dir), str(problems), settings, answer_field="answer"
    )
    output = tmp_path / "labels.jsonl"
    summary = run_label(job, output, RUNTIME, equivalent=numeric_equivalence)
    kept = read_jsonl(output)
    rejects = read_jsonl(output.with_name("labels.jsonl.rejects.jsonl"))
    assert len(kept) + len(rejects) == 3 == summary["problems"]
    assert summary["kept"] == len(kept) and summary["rejected"] == len(rejects)
    assert sum(summary["rejected_by_reason"].values()) == len(rejects)
    assert {r["id"] for r in kept + rejects} == {"1", "2", "3"}
    assert all(r["reason"] for r in rejects) and all(r["agreement"] >= 0.5 for r in kept)
    assert run_label(job, output, RUNTIME, equivalent=numeric_equivalence) == summary
    with pytest.raises(run_store.ConfigMismatchError, match="--threshold"):
        other = LabelJob(
            str(teacher_dir), str(teacher_dir), str(problems), LabelSettings(threshold=0.9)
        )
        run_label(other, output, RUNTIME, equivalent=numeric_equivalence)


def test_bad_files_and_flags_are_named(tmp_path, teacher_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a"}\n{"question": "q2"}\n')
    job = FeatureJob(proxy="p", tokenizer="t", data=str(bad))
    with pytest.raises(RecordFileError, match=r"bad.jsonl:2: no field 'answer'.*--response_field"):
        job.load()
    too_long = FeatureJob(
        proxy=str(teacher_dir), tokenizer="t", data=str(bad), render=RenderSettings(max_length=5000)
    )
    with pytest.raises(
        SettingsError, match="--max_length=5000 exceeds the proxy's context of 4096"
    ):
        too_long.check_context()
    with pytest.raises(SettingsError, match="--dim"):
        FeatureJob(proxy="p", tokenizer="t", data=str(bad), dim=33)
    result = subprocess.run(
        [sys.executable, "-m", "reasonrl.synthetic.prismatic", "score", "--budget=3"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "error: `score` does not read --budget" in result.stderr
