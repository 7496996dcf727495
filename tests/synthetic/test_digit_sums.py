"""The digit-sums text of the RLP recipe: answers, running sums, thought kinds, disjoint sets."""

import json

import numpy as np
import pytest

from reasonrl.synthetic import digit_sums


def _parse(document: str):
    question, rest = document.split("=", 1)
    thought = None
    if rest.startswith("<think>"):
        thought, rest = rest[len("<think>") :].split("</think>")
    return question, thought, rest


def test_documents_hold_the_sum_and_the_running_sums():
    digits = np.array([2, 1, 1, 0, 2, 0, 1, 0, 0, 2])
    assert digit_sums.plain_document(digits, 3) == "2110201002=0"
    assert digit_sums.thought_document(digits, 3, computes=True) == (
        "2110201002=<think>+2011001110</think>0"
    )
    assert digit_sums.thought_document(digits, 3, computes=False) == (
        "2110201002=<think>2110201002</think>0"
    )
    np.testing.assert_array_equal(digit_sums.running_sums(np.array([[4, 7, 3]]), 10), [[4, 1, 4]])


def test_dataset_files(tmp_path):
    files = digit_sums.write_digit_sums_dataset(
        tmp_path, pretrain_count=4000, midtrain_count=2000, rlp_count=300, test_count=50
    )
    questions = {}
    for name in ("pretrain", "midtrain", "rlp", "test"):
        documents = files[name].read_text().splitlines()
        parsed = [_parse(d) for d in documents]
        for question, thought, answer in parsed:
            digits = [int(c) for c in question]
            assert len(digits) == 10 and max(digits) <= 2
            assert int(answer) == sum(digits) % 3
            if thought is not None and thought.startswith("+"):
                sums = digit_sums.running_sums(np.array(digits), 3)
                assert thought == "+" + "".join(map(str, sums))
            elif thought is not None:
                assert thought == question
        questions[name] = {q for q, _, _ in parsed}
        thoughts = [t for _, t, _ in parsed if t is not None]
        computing = np.mean([t.startswith("+") for t in thoughts]) if thoughts else 0.0
        if name == "pretrain":  # half carry a thought, half of those compute
            assert len(thoughts) / len(parsed) == pytest.approx(0.5, abs=0.05)
            assert computing == pytest.approx(0.5, abs=0.05)
        elif name == "midtrain":  # a tenth carry a thought, 5% of those compute
            assert len(thoughts) / len(parsed) == pytest.approx(0.1, abs=0.03)
            assert computing < 0.15
        else:  # the RLP and test text: plain documents only
            assert not thoughts
    names = list(questions)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not questions[a] & questions[b], (a, b)
    records = [json.loads(line) for line in files["test_jsonl"].read_text().splitlines()]
    assert [r["question"] + r["answer"] for r in records] == files["test"].read_text().split()
