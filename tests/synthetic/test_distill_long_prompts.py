"""Distillation of problems whose prompt leaves no room for max_new_tokens in the teacher's
context: they yield no samples (counted, warned once), or with truncate_prompt="left" the teacher
samples them from the prompt's end."""

import dataclasses
import logging

import pytest

from reasonrl.rewards import Problem
from reasonrl.synthetic import distill_store
from reasonrl.synthetic.distill import DistillSettings, SettingsError, distill_batches
from tests.synthetic.conftest import PROBLEMS
from tests.synthetic.test_distill import SETTINGS, always_correct

# PROBLEMS' prompts (116 tokens) fit beside SETTINGS.max_new_tokens=16; LONG's (253) do not.
SHORT_CONTEXT = 132
LONG = [
    Problem(id=f"long{index}", problem="Tom has many apples. " * 12, answer="1")
    for index in range(2)
]


@pytest.fixture(scope="module")
def short_teacher(teacher):
    """The tiny teacher with a SHORT_CONTEXT-token context (same weights)."""
    config, params, tokenizer = teacher
    return dataclasses.replace(config, max_position_embeddings=SHORT_CONTEXT), params, tokenizer


def _prompt_too_long_warnings(caplog):
    return [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING and "prompt_too_long" in record.getMessage()
    ]


def test_a_problem_whose_prompt_does_not_fit_yields_no_samples(short_teacher, teacher, caplog):
    problems = [PROBLEMS[0], LONG[0], PROBLEMS[1], LONG[1]]  # one long problem per batch
    with caplog.at_level(logging.WARNING):
        outcomes = list(distill_batches(*short_teacher, problems, SETTINGS, grader=always_correct))
    assert len(_prompt_too_long_warnings(caplog)) == 1
    assert [outcome.prompt_too_long for outcome in outcomes] == [["long0"], ["long1"]]
    assert [[c.problem_id for c in outcome.candidates] for outcome in outcomes] == [
        ["p0"] * 4,
        ["p1"] * 4,
    ]
    assert {record["id"] for outcome in outcomes for record in outcome.records} == {"p0", "p1"}
    # p0 is the first row of its batch either way: its samples do not depend on the long problem.
    beside_p1 = next(distill_batches(*teacher, PROBLEMS[:2], SETTINGS, grader=always_correct))
    assert outcomes[0].candidates == beside_p1.candidates[:4]
    summary = distill_store.summarize([outcome.counts() for outcome in outcomes])
    assert (summary["problems"], summary["samples"], summary["kept_records"]) == (4, 8, 8)
    assert (summary["prompt_too_long_problems"], summary["prompt_truncated_problems"]) == (2, 0)
    assert all("prompt_truncated" not in record for o in outcomes for record in o.records)


def test_truncate_prompt_left_samples_the_end_of_a_long_prompt(short_teacher, caplog):
    settings = dataclasses.replace(SETTINGS, truncate_prompt="left")
    with caplog.at_level(logging.WARNING):
        (outcome,) = distill_batches(
            *short_teacher, [PROBLEMS[0], LONG[0]], settings, grader=always_correct
        )
    assert not _prompt_too_long_warnings(caplog)
    assert (outcome.prompt_truncated, outcome.prompt_too_long) == (["long0"], [])
    assert [c.problem_id for c in outcome.candidates] == ["p0"] * 4 + ["long0"] * 4
    assert [(r["id"], r["prompt_truncated"]) for r in outcome.records] == (
        [("p0", False)] * 4 + [("long0", True)] * 4
    )
    assert outcome.counts()["prompt_truncated_problems"] == 1


def test_truncate_prompt_choices():
    with pytest.raises(SettingsError, match=r"--truncate_prompt: unknown 'right'"):
        DistillSettings(truncate_prompt="right")
    with pytest.raises(SettingsError, match=r"not among \[.*'prompt_truncated'\]"):
        DistillSettings(prompt_field="prompt_truncated")
