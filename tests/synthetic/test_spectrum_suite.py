"""The spectrum suite generator: exact distributions, disjoint held-out tasks, the baseline's
one answer, determinism, and that the shipped files are what the generator writes."""

import collections
import json

import numpy as np
import pytest

from reasonrl.paths import asset
from reasonrl.synthetic import spectrum_suite
from reasonrl.synthetic.spectrum_suite import FAMILIES, MAKERS, SuiteSettings, generate_suite

SMALL = SuiteSettings(train_tasks=120, heldout_tasks_per_family=3)


@pytest.fixture(scope="module")
def suite():
    return generate_suite(SMALL)


def test_queries_are_distributions_and_samples_follow_them():
    rng = np.random.default_rng(0)
    for family in FAMILIES:
        for _ in range(5):
            task = MAKERS[family](rng)
            (query,) = task.queries
            assert abs(sum(query.probs) - 1) < 1e-9 and min(query.probs) > 0
            assert len(set(query.candidates)) == len(query.candidates)
            if family in ("other", "individual"):
                continue  # other: conditional on the input; individual: the person's own odds
            draws = collections.Counter(
                s["output"] for s in spectrum_suite.draw_samples(task, rng, 4000)
            )
            assert set(draws) <= set(query.candidates)
            frequencies = np.array([draws[c] / 4000 for c in query.candidates])
            np.testing.assert_allclose(frequencies, query.probs, atol=0.035)


def test_other_family_excludes_the_input():
    rng = np.random.default_rng(1)
    task = MAKERS["other"](rng)
    for sample in spectrum_suite.draw_samples(task, rng, 200):
        assert sample["input"] != sample["output"] and sample["output"] in task.description


def test_individual_favourite_and_baseline_answer():
    rng = np.random.default_rng(2)
    task = MAKERS["individual"](rng)
    draws = collections.Counter(s["output"] for s in spectrum_suite.draw_samples(task, rng, 3000))
    assert draws.most_common(1)[0][0] == task.answer
    assert abs(draws[task.answer] / 3000 - spectrum_suite.FAVOURITE_PROBABILITY) < 0.04
    record = spectrum_suite.sft_record(task, "x")
    assert record["messages"][-1] == {"role": "assistant", "content": task.answer}


def test_heldout_output_sets_never_appear_in_training(monkeypatch):
    training_tasks = []
    original = spectrum_suite.sft_record

    def capture(task, task_id):
        training_tasks.append(task)
        return original(task, task_id)

    monkeypatch.setattr(spectrum_suite, "sft_record", capture)
    suite = generate_suite(SMALL)
    heldout = {
        (frozenset(q["candidates"]), q.get("input")) for r in suite["heldout"] for q in r["queries"]
    }
    assert len(heldout) == len(suite["heldout"]) == 3 * len(FAMILIES)
    assert len(training_tasks) == SMALL.train_tasks
    assert not {spectrum_suite.signature(task) for task in training_tasks} & heldout
    assert {r["family"] for r in suite["train"]} == set(FAMILIES)


def test_sft_answers_are_the_modes(suite):
    for record, sft in zip(suite["train"], suite["sft_train"]):
        assert sft["id"] == record["id"]
        assert sft["messages"][0] == {"role": "user", "content": record["description"]}
        assert sft["messages"][-1]["role"] == "assistant"
        if record["family"] == "categorical":  # the first of the stated probabilities is largest
            first = record["description"].split(": ")[1].split(" ")[0]
            assert sft["messages"][-1]["content"] == first


def test_deterministic(suite):
    assert generate_suite(SMALL) == suite
    assert generate_suite(SuiteSettings(seed=1, train_tasks=120))["train"] != suite["train"]


def test_shipped_files_are_the_generator_output(tmp_path):
    spectrum_suite.write_spectrum_suite(tmp_path)
    for name in (
        "train.jsonl",
        "sft_train.jsonl",
        "heldout.jsonl",
        "pretrain.txt",
        "tokenizer.txt",
    ):
        shipped = asset("synthetic", "spectrum", name).read_text(encoding="utf-8")
        assert (tmp_path / name).read_text(encoding="utf-8") == shipped, name
    heldout = [json.loads(line) for line in (tmp_path / "heldout.jsonl").read_text().splitlines()]
    assert len(heldout) == 48
