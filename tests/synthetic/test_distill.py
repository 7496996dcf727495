"""Distillation on a tiny random teacher: filtering, selection, sft compatibility, determinism,
resumption, input errors and the command line."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrl.data import make_pipeline
from reasonrl.rewards import GradeResult, extract_answer
from reasonrl.sampling import run_store
from reasonrl.synthetic import distill as distill_module
from reasonrl.synthetic import distill_store
from reasonrl.synthetic.distill import (
    DistillJob,
    DistillSettings,
    ProblemFileError,
    SettingsError,
    distill,
    distill_batches,
    load_problem_file,
    run_distill,
    select_records,
    sft_prompt,
)
from tests.synthetic.conftest import PROBLEMS, write_problems

REPO_ROOT = Path(__file__).resolve().parents[2]
# 5 problems in batches of 2 (the last one short), 4 samples each, temperature 1.
SETTINGS = DistillSettings(
    num_samples=4, temperature=1.0, max_new_tokens=16, batch_size=2, drop_truncated=False
)


def always_correct(completions, golds):
    return [GradeResult("1", True, "correct") for _ in completions]


def even_length_correct(completions, golds):
    return [GradeResult(str(len(text)), len(text) % 2 == 0, "injected") for text in completions]


def _ids(records):
    return [(record["id"], record["sample"]) for record in records]


@pytest.fixture(scope="module")
def sampled(teacher):
    """Every graded sample of PROBLEMS under SETTINGS with an always-correct grader."""
    return list(distill_batches(*teacher, PROBLEMS, SETTINGS, grader=always_correct))


def test_records_are_the_injected_graders_correct_samples(teacher, sampled):
    records = list(distill(*teacher, PROBLEMS, SETTINGS, grader=even_length_correct))
    candidates = [c for outcome in sampled for c in outcome.candidates]
    expected = [(c.problem_id, c.sample) for c in candidates if len(c.completion) % 2 == 0]
    assert 0 < len(expected) < len(candidates)  # the filter has something to do
    assert _ids(records) == expected
    by_key = {(c.problem_id, c.sample): c for c in candidates}
    problems = {problem.id: problem for problem in PROBLEMS}
    for record in records:
        candidate = by_key[record["id"], record["sample"]]
        assert record["answer"] == "<think>\n" + candidate.completion  # r1's assistant prefix
        assert record["question"] == sft_prompt(problems[record["id"]].problem, "r1")
        assert record["question"].startswith(problems[record["id"]].problem)
        assert record["num_tokens"] == candidate.num_tokens
        assert record["extracted_answer"] == str(len(candidate.completion))


def test_only_math_graded_correct_samples_are_kept(teacher, sampled):
    """Real grader: each problem's gold is the answer extracted from one of its own samples."""
    candidates = [c for outcome in sampled for c in outcome.candidates]
    golds = {}
    for candidate in candidates:
        answer = extract_answer(candidate.completion)
        if answer is not None:
            golds.setdefault(candidate.problem_id, answer)
    assert len(golds) >= 2
    problems = [dataclasses.replace(p, answer=golds.get(p.id, "-987654321")) for p in PROBLEMS]
    outcomes = list(distill_batches(*teacher, problems, SETTINGS))
    graded = [c for outcome in outcomes for c in outcome.candidates]
    assert [c.completion for c in graded] == [c.completion for c in candidates]  # same samples
    kept = _ids(record for outcome in outcomes for record in outcome.records)
    assert kept == [(c.problem_id, c.sample) for c in graded if c.correct]
    assert set(golds.items()) <= {(c.problem_id, c.answer) for c in graded if c.correct}
    rejected = [c for c in graded if c.answer is not None and not c.correct]
    assert kept and rejected  # both verdicts occur


def test_drop_truncated_keeps_finished_samples_only(teacher, sampled):
    settings = dataclasses.replace(SETTINGS, drop_truncated=True)
    candidates = [c for outcome in sampled for c in outcome.candidates]
    finished = [(c.problem_id, c.sample) for c in candidates if c.finish_reason == "stop"]
    assert 0 < len(finished) < len(candidates)
    records = [
        record
        for outcome in sampled
        for record in select_records(outcome.problems, outcome.candidates, settings)
    ]
    assert _ids(records) == finished


def _expected_top(candidates, keep, key):
    by_problem = {}
    for candidate in candidates:
        by_problem.setdefault(candidate.problem_id, []).append(candidate)
    kept = []
    for group in by_problem.values():
        ranked = sorted(group, key=lambda c: (-key(c), c.sample))[:keep]
        kept += sorted((c.problem_id, c.sample) for c in ranked)
    return kept


@pytest.mark.parametrize(
    "select, key",
    [
        ("shortest", lambda c: -c.num_tokens),
        ("longest", lambda c: c.num_tokens),
        ("scorer:tests.synthetic.scorers:character_count", lambda c: len(c.completion)),
    ],
)
@pytest.mark.parametrize("keep", [1, 2])
def test_selection_keeps_the_best_per_problem(sampled, select, key, keep):
    settings = dataclasses.replace(SETTINGS, select=select, keep_per_problem=keep)
    candidates = [c for outcome in sampled for c in outcome.candidates]
    records = [
        record
        for outcome in sampled
        for record in select_records(outcome.problems, outcome.candidates, settings)
    ]
    assert _ids(records) == _expected_top(candidates, keep, key)
    assert len(records) == keep * len(PROBLEMS)
    everything = _ids(
        r for o in sampled for r in select_records(o.problems, o.candidates, SETTINGS)
    )
    assert len(everything) == len(candidates)  # --select=all keeps every sample


def test_output_loads_through_the_sft_pipeline(teacher, sampled, tmp_path):
    _, _, tokenizer = teacher
    records = [record for outcome in sampled for record in outcome.records]
    path = tmp_path / "distilled.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    spec = {
        "source": {"type": "jsonl", "path": str(path)},
        "task": {
            "type": "sft",
            "chat_template": "chatml",
            "prompt_field": "question",
            "response_field": "answer",
        },
        "packing": {"type": "pad"},
        "shuffle": False,
        "num_epochs": 1,
        "drop_remainder": False,
    }
    batches = list(
        make_pipeline(
            spec, tokenizer, batch_size=4, seq_len=512, seed=0, shard_index=0, shard_count=1
        )
    )
    assert sum(int(batch["loss_mask"].sum()) > 0 for batch in batches) == len(batches)
    assert sum(int((batch["segment_ids"][:, 0] > 0).sum()) for batch in batches) == len(records)


# --------------------------------------------------------------------------- problems file


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"problem": "1+1", "answer": "2"}', "{not json"], r"problems.jsonl:2: not a JSON line"),
        (
            ['{"problem": "1+1", "answer": 2}', "", '{"question": "x", "answer": "1"}'],
            r"problems.jsonl:3: no field 'problem' \(it has \['answer', 'question'\]\); set "
            r"--problem_field",
        ),
        (['{"problem": "1+1"}'], r"problems.jsonl:1: no field 'answer'"),
        (["[1, 2]"], r"problems.jsonl:1: expected a JSON object, got list"),
        (
            ['{"problem": "", "answer": "1"}'],
            r"problems.jsonl:1: field 'problem' must be a non-emp",
        ),
        (['{"problem": "x", "answer": [1]}'], r"problems.jsonl:1: field 'answer' must be a string"),
        ([""], r"problems.jsonl: no problems"),
    ],
)
def test_bad_problem_lines_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "problems.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProblemFileError, match=message):
        load_problem_file(path)


def test_problem_file_fields_and_ids(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text('{"q": "1+1", "gold": 2, "key": 7}\n\n{"q": "2+2", "gold": "4", "key": "b"}\n')
    problems = load_problem_file(path, problem_field="q", answer_field="gold", id_field="key")
    assert [(p.id, p.problem, p.answer) for p in problems] == [("7", "1+1", "2"), ("b", "2+2", "4")]
    assert [p.id for p in load_problem_file(path, problem_field="q", answer_field="gold")] == [
        "1",
        "3",
    ]  # line numbers
    path.write_text('{"q": "1", "gold": 1, "key": "a"}\n{"q": "2", "gold": 2, "key": "a"}\n')
    with pytest.raises(ProblemFileError, match=r"problems.jsonl:2: id 'a' repeats line 1"):
        load_problem_file(path, problem_field="q", answer_field="gold", id_field="key")
    with pytest.raises(ProblemFileError, match=r"--problems: file not found"):
        load_problem_file(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"batch_size": 0}, r"--batch_size must be >= 1"),
        ({"response_field": "question"}, r"--prompt_field and --response_field must be two"),
        ({"response_field": "id"}, r"not among \['id'"),
        ({"prompt_template": "alpaca"}, r"--prompt_template: unknown 'alpaca'"),
        ({"keep_per_problem": 0}, r"--keep_per_problem must be >= 1"),
        ({"top_p": 0.0}, r"0 < --top_p <= 1; got 0.6, 0, 0.0"),
    ],
)
def test_bad_settings(overrides, message):
    with pytest.raises(SettingsError, match=message):
        DistillSettings(**overrides)


def test_bad_jobs():
    with pytest.raises(SettingsError, match=r"give exactly one of --problems and --benchmark"):
        DistillJob(teacher="t", tokenizer="t", settings=SETTINGS)
    with pytest.raises(SettingsError, match=r"--benchmark: unknown 'gsm8k'"):
        DistillJob(teacher="t", tokenizer="t", settings=SETTINGS, benchmark="gsm8k")
    job = DistillJob(teacher="t", tokenizer="t", settings=SETTINGS, benchmark="aime24", limit=2)
    assert [problem.id for problem in job.load_problems()] == ["2024-I-1", "2024-I-2"]


# --------------------------------------------------------------------------- resumable runs


def _job(teacher_dir, problems_path, **overrides):
    return DistillJob(
        teacher=str(teacher_dir),
        tokenizer=str(teacher_dir),
        settings=dataclasses.replace(SETTINGS, **overrides),
        problems=str(problems_path),
    )


@pytest.fixture(scope="module")
def full_run(teacher_dir, tmp_path_factory):
    """An uninterrupted run_distill (always-correct grader): (problems path, output path)."""
    directory = tmp_path_factory.mktemp("full_run")
    problems = write_problems(directory / "problems.jsonl")
    output = directory / "out.jsonl"
    run_distill(_job(teacher_dir, problems), output, grader=always_correct)
    return problems, output


def test_run_writes_records_state_and_summary(full_run):
    _, output = full_run
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 5 * 4
    summary = json.loads(distill_store.summary_path(output).read_text())
    assert (summary["problems"], summary["samples"], summary["correct"]) == (5, 20, 20)
    assert (summary["kept_records"], summary["problems_with_kept"]) == (20, 5)
    assert summary["correct_fraction"] == 1.0
    assert summary["mean_kept_tokens"] == pytest.approx(
        sum(record["num_tokens"] for record in records) / 20
    )
    assert summary["truncated"] == sum(record["num_tokens"] == 16 for record in records)
    assert len(distill_store.state_path(output).read_text().splitlines()) == 1 + 3  # 3 batches


def test_same_seed_same_bytes_other_seed_other_bytes(full_run, teacher_dir, tmp_path):
    problems, output = full_run
    run_distill(_job(teacher_dir, problems), tmp_path / "again.jsonl", grader=always_correct)
    assert (tmp_path / "again.jsonl").read_bytes() == output.read_bytes()
    run_distill(
        _job(teacher_dir, problems, seed=1), tmp_path / "seed1.jsonl", grader=always_correct
    )
    assert (tmp_path / "seed1.jsonl").read_bytes() != output.read_bytes()


def test_resume_after_partial_output_matches_uninterrupted_run(full_run, teacher_dir, tmp_path):
    """Killed after batch 0's state line, while writing batch 1 (records torn, state torn)."""
    problems, output = full_run
    expected = output.read_bytes()
    header, first_batch, *_ = distill_store.state_path(output).read_text().splitlines(True)
    batch0_bytes = json.loads(first_batch)["output_bytes"]
    partial = tmp_path / "out.jsonl"
    partial.write_bytes(expected[: batch0_bytes + 40])
    distill_store.state_path(partial).write_text(header + first_batch + '{"batch": 1, "co')
    summary = run_distill(_job(teacher_dir, problems), partial, grader=always_correct)
    assert partial.read_bytes() == expected
    assert distill_store.state_path(partial).read_text() == distill_store.state_path(
        output
    ).read_text().replace(str(output), str(partial))
    assert distill_store.summary_path(partial).read_text() == distill_store.summary_path(
        output
    ).read_text().replace(str(output), str(partial))
    assert summary["kept_records"] == 20


def _copy_run(output, copy):
    copy.write_bytes(output.read_bytes())
    distill_store.state_path(copy).write_bytes(distill_store.state_path(output).read_bytes())
    return copy


def test_finished_run_is_not_regenerated(full_run, teacher_dir, tmp_path, monkeypatch):
    problems, output = full_run
    copy = _copy_run(output, tmp_path / "out.jsonl")

    def no_teacher(*args):
        raise AssertionError("a finished run loaded the teacher")

    monkeypatch.setattr(distill_module, "_load_teacher", no_teacher)
    assert run_distill(_job(teacher_dir, problems), copy)["kept_records"] == 20
    assert copy.read_bytes() == output.read_bytes()


def test_other_settings_or_foreign_output_are_refused(full_run, teacher_dir, tmp_path):
    problems, output = full_run
    copy = _copy_run(output, tmp_path / "out.jsonl")
    with pytest.raises(run_store.ConfigMismatchError, match=r"--temperature: stored 1.0, now 0.5"):
        run_distill(_job(teacher_dir, problems, temperature=0.5), copy)
    # The same problems path with other content (the state is edited to point at the copy).
    edited = write_problems(tmp_path / "edited.jsonl", PROBLEMS[:4])
    state = distill_store.state_path(copy)
    header, *entries = state.read_text().splitlines(True)
    config = json.loads(header)["config"]
    state.write_text(
        json.dumps({"config": {**config, "problems": str(edited)}}) + "\n" + "".join(entries)
    )
    with pytest.raises(
        run_store.ConfigMismatchError,
        match=r"(?s)stored.*\n  "
        r"--problems_sha256: stored '[0-9a-f]{64}', now '[0-9a-f]{64}'$",
    ):
        run_distill(_job(teacher_dir, edited), copy)
    assert copy.read_bytes() == output.read_bytes()
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(distill_store.OutputError, match=r"exists but has no foreign.jsonl.state"):
        run_distill(_job(teacher_dir, problems), foreign)
    assert foreign.read_text() == '{"question": "q", "answer": "a"}\n'


# --------------------------------------------------------------------------- command line


def _env() -> dict:
    """One CPU device (not the session's 8 virtual ones) and the shared compile cache."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = " ".join(
        flag
        for flag in env.get("XLA_FLAGS", "").split()
        if "xla_force_host_platform_device_count" not in flag
    )
    env["JAX_COMPILATION_CACHE_DIR"] = env.get(
        "REASONRL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "reasonrl", "jax")
    )
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "reasonrl.synthetic.distill", *args],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_run_resume_and_refusal(teacher_dir, tmp_path):
    problems = write_problems(tmp_path / "problems.jsonl")
    output = tmp_path / "out" / "distilled.jsonl"
    args = [
        f"--teacher={teacher_dir}",
        f"--problems={problems}",
        f"--output={output}",
        "--limit=3",
        "--num_samples=2",
        "--max_new_tokens=16",
        "--batch_size=2",
        "--temperature=1.0",
        "--select=longest",
        "--grader_workers=1",
    ]
    result = _cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(distill_store.summary_path(output).read_text())
    assert json.loads(result.stdout) == summary
    assert (summary["problems"], summary["samples"]) == (3, 6)
    assert len(output.read_text().splitlines()) == summary["kept_records"] <= 3
    config = json.loads(distill_store.state_path(output).read_text().splitlines()[0])["config"]
    assert config["teacher"] == str(teacher_dir) and config["select"] == "longest"
    before = output.read_bytes()
    assert _cli(*args).returncode == 0 and output.read_bytes() == before  # already complete
    refused = _cli(*args, "--temperature=0.5")
    assert refused.returncode == 2
    assert "--temperature: stored 1.0, now 0.5" in refused.stderr
    assert "Traceback" not in refused.stderr


# One case per kind of failure (each starts a Python process); the library tests cover the rest.
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--problems={bad}"], "{bad}:2: not a JSON line"),
        (["--benchmark=math500", "--problems={bad}"], "give exactly one of --problems and --bench"),
        (["--problems={bad}", "--teacher={bad}.d"], "--teacher '{bad}.d' does not exist"),
        (["--problems={bad}", "--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
        (["--problems={bad}", "--num_samples=many"], "flags: "),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(teacher_dir, tmp_path, extra, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "1+1", "answer": "2"}\nnot json\n')
    paths = {"bad": bad}
    args = [f"--teacher={teacher_dir}", f"--output={tmp_path / 'out.jsonl'}"]
    result = _cli(*args, *(flag.format(**paths) for flag in extra))
    assert result.returncode == 2, result.stderr[-2000:]
    assert message.format(**paths) in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error: ")]) == 1
    assert not (tmp_path / "out.jsonl").exists()
