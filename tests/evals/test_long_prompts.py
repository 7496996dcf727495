"""Prompts that leave no room for --max_new_tokens in the model's context: the run finishes and
records them as prompt_too_long (warned once), or with --truncate_prompt=left samples their end."""

import json
import re

import pytest

from evals.common import metrics, store
from reasonrl import data as data_lib
from reasonrl import rewards
from reasonrl.data.prompt_templates import prompt_token_ids
from tests.evals.conftest import SHORT_CONTEXT
from tests.evals.test_end_to_end import _run

MAX_NEW_TOKENS = 16
LIMIT = 4  # batches of 2: the first all too long, the second mixed (so two batches have one)


def _too_long_ids(checkpoint) -> set[str]:
    """The first LIMIT MATH-500 problems whose r1 prompt does not fit beside MAX_NEW_TOKENS."""
    tokenizer = data_lib.load_tokenizer(checkpoint)
    too_long = {
        problem.id
        for problem in rewards.load_benchmark("math500")[:LIMIT]
        if len(
            prompt_token_ids(
                problem.problem, prompt_template="r1", chat_template="chatml", tokenizer=tokenizer
            )
        )
        > SHORT_CONTEXT - MAX_NEW_TOKENS
    }
    assert 0 < len(too_long) < LIMIT  # both kinds occur
    return too_long


def _eval(checkpoint, output_dir, *extra, check=True):
    return _run(
        "evals.math500",
        checkpoint,
        output_dir,
        f"--limit={LIMIT}",
        f"--max_new_tokens={MAX_NEW_TOKENS}",
        *extra,
        check=check,
    )


def _warnings(stderr: str) -> list[str]:
    """absl WARNING lines about prompt_too_long (tqdm's progress may precede one on its line)."""
    return re.findall(r"\bW\d{4} [^\n\]]*\] [^\n]*prompt_too_long", stderr)


def test_a_prompt_that_does_not_fit_is_recorded_and_the_run_finishes(
    short_context_checkpoint, tmp_path
):
    too_long = _too_long_ids(short_context_checkpoint)
    result = _eval(short_context_checkpoint, tmp_path)
    assert "Traceback" not in result.stderr
    assert len(_warnings(result.stderr)) == 1, result.stderr[-3000:]
    records = store.read_samples(tmp_path / "samples.jsonl")
    assert len(records) == LIMIT * 2
    for record in records:
        if record["id"] in too_long:
            assert (record["status"], record["finish_reason"]) == ("prompt_too_long",) * 2
            assert (record["completion"], record["num_tokens"]) == ("", 0)
            assert record["correct"] is False and record["answer"] is None
        else:
            assert record["finish_reason"] in ("stop", "length") and record["num_tokens"] >= 1
        assert "prompt_truncated" not in record
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["prompt_too_long_problems"] == len(too_long)
    assert summary["status_counts"]["prompt_too_long"] == 2 * len(too_long)
    assert summary["prompt_truncated_problems"] == 0
    correct = {}
    for record in records:
        correct.setdefault(record["id"], []).append(record["correct"])
    assert summary["pass@k"]["2"] == pytest.approx(
        sum(metrics.pass_at_k(2, sum(c), 2) for c in correct.values()) / LIMIT
    )
    sampled = [record for record in records if record["id"] not in too_long]
    assert summary["mean_completion_tokens"] == pytest.approx(
        sum(record["num_tokens"] for record in sampled) / len(sampled)
    )


def test_truncate_prompt_left_samples_the_end_of_the_prompt(short_context_checkpoint, tmp_path):
    too_long = _too_long_ids(short_context_checkpoint)
    result = _eval(short_context_checkpoint, tmp_path, "--truncate_prompt=left")
    assert not _warnings(result.stderr)
    records = store.read_samples(tmp_path / "samples.jsonl")
    assert len(records) == LIMIT * 2
    assert {r["id"] for r in records if r["prompt_truncated"]} == too_long
    assert all(r["finish_reason"] in ("stop", "length") and r["num_tokens"] >= 1 for r in records)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["prompt_truncated_problems"], summary["prompt_too_long_problems"]) == (
        len(too_long),
        0,
    )
    generation = json.loads((tmp_path / "run_config.json").read_text())["generation"]
    assert generation["truncate_prompt"] == "left"
    refused = _eval(short_context_checkpoint, tmp_path, check=False)  # default: none
    assert refused.returncode == 2
    assert "--truncate_prompt: stored 'left', now 'none'" in refused.stderr
