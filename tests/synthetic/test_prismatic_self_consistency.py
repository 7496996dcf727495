"""Self-consistency: grouping with the grader's equivalence, the majority rule, the labels."""

import numpy as np
import pytest

from reasonrl.rewards import Problem
from reasonrl.synthetic.prismatic import self_consistency as sc
from reasonrl.synthetic.prismatic.label_run import LabelSettings, label_batch


def numeric_equivalence(predictions, golds):
    """An independent stand-in for the grader: equal as floats."""

    def value(text):
        try:
            return float(text)
        except ValueError:
            return text

    return [value(p) == value(g) for p, g in zip(predictions, golds)]


def test_answer_classes_with_the_real_grader():
    answers = ["0.5", r"\frac{1}{2}", "3", None, "1/2", "", "3.0"]
    [classes] = sc.answer_classes([answers], sc.grader_equivalence(timeout_s=5.0))
    assert classes.tolist() == [0, 0, 1, -1, 0, -1, 1]


def test_answer_classes_group_each_problem_on_its_own():
    sets = [["7", "7.0", "8"], ["8", "x", "8"], [None, None]]
    classes = sc.answer_classes(sets, numeric_equivalence)
    assert [c.tolist() for c in classes] == [[0, 0, 1], [0, 1, 0], [-1, -1]]


@pytest.mark.parametrize(
    "classes, valid, votes, majority",
    [
        ([0, 0, 1, -1], 3, 2, 0),
        ([0, 1, 1, 0], 4, 2, -1),  # tie: no majority
        ([-1, -1], 0, 0, -1),
        ([2, 1, 2, 2, 0], 5, 3, 2),
    ],
)
def test_majority_vote(classes, valid, votes, majority):
    vote = sc.majority_vote(np.asarray(classes))
    assert (vote.valid, vote.votes, vote.majority) == (valid, votes, majority)
    assert vote.agreement == (votes / valid if valid else 0.0)


def test_rejection_reasons():
    finished = np.ones(4, bool)
    assert sc.rejection_reason(sc.majority_vote(np.array([0, 0, 0, 1])), finished, 0.75) is None
    assert (
        sc.rejection_reason(sc.majority_vote(np.array([0, 0, 1, 2])), finished, 0.75)
        == "below_threshold"
    )
    assert sc.rejection_reason(sc.majority_vote(np.array([0, 1, -1, -1])), finished, 0.5) == "tie"
    assert sc.rejection_reason(sc.majority_vote(np.full(4, -1)), finished, 0.5) == "no_valid_answer"
    unfinished = np.array([False, False, True, True])
    assert (
        sc.rejection_reason(sc.majority_vote(np.array([0, 0, 1, -1])), unfinished, 0.5)
        == "no_finished_majority_sample"
    )


def test_label_batch_keeps_reports_and_checks_gold():
    problems = [
        Problem("a", "1+1?", "2"),
        Problem("b", "2+2?", "5"),
        Problem("c", "3+3?", ""),
        Problem("d", "4+4?", ""),
    ]
    texts = [
        r"\boxed{2}", r"\boxed{2.0}", r"\boxed{3}",  # a: 2 of 3 -> kept, correct
        r"\boxed{4}", r"\boxed{4}", "no answer",  # b: kept, wrong against gold 5
        r"\boxed{6}", r"\boxed{7}", r"\boxed{8}",  # c: 1 of 3 -> below threshold
        r"\boxed{1}", r"\boxed{1}", r"\boxed{1}",  # d: prompt did not fit
    ]  # fmt: skip
    finish = ["stop"] * 12
    too_long = [False] * 9 + [True] * 3
    settings = LabelSettings(num_samples=3, threshold=0.6, prompt_template="plain")
    kept, rejects, counts = label_batch(
        problems, texts, finish, too_long, settings, numeric_equivalence
    )
    assert [r["id"] for r in kept] == ["a", "b"]
    assert kept[0]["label"] == "2" and kept[0]["agreement"] == pytest.approx(2 / 3)
    assert kept[0]["answer"] == r"\boxed{2}" and kept[0]["question"] == "1+1?"
    assert kept[0]["label_correct"] is True and kept[1]["label_correct"] is False
    assert kept[1]["valid_answers"] == 2 and kept[1]["agreement"] == 1.0
    assert [(r["id"], r["reason"]) for r in rejects] == [
        ("c", "below_threshold"),
        ("d", "prompt_too_long"),
    ]
    assert "gold" not in rejects[0]
    assert counts == {
        "problems": 4,
        "samples": 12,
        "valid_answers": 3 + 2 + 3 + 3,
        "kept": 2,
        "with_gold": 2,
        "label_correct": 1,
    }


def test_label_settings_name_the_bad_flag():
    with pytest.raises(ValueError, match="--threshold"):
        LabelSettings(threshold=0.0)
    with pytest.raises(ValueError, match="--num_samples"):
        LabelSettings(num_samples=0)
    with pytest.raises(ValueError, match="--prompt_field and --response_field"):
        LabelSettings(response_field="label")
