"""Selection strategies on hand-made candidates: ranking, ties, keep_per_problem, errors."""

import pytest

from reasonrl.synthetic.selection import (
    SELECTION_STRATEGIES,
    Candidate,
    SelectionError,
    make_selector,
)

# sample -> (num_tokens, completion); samples 1 and 3 tie on tokens, 0 and 2 on characters.
SAMPLES = {0: (30, "abcd"), 1: (10, "a"), 2: (50, "wxyz"), 3: (10, "abcdefgh")}


def _candidates(samples=(0, 1, 2, 3)):
    return [
        Candidate(
            problem_id="p",
            sample=s,
            completion=SAMPLES[s][1],
            num_tokens=SAMPLES[s][0],
            finish_reason="stop",
            answer="1",
            correct=True,
            status="correct",
        )
        for s in samples
    ]


def _kept(spec, keep, samples=(0, 1, 2, 3)):
    return sorted(c.sample for c in make_selector(spec)("problem", _candidates(samples), keep))


def test_registry_names():
    assert set(SELECTION_STRATEGIES) == {"all", "shortest", "longest", "scorer"}


@pytest.mark.parametrize(
    "spec, keep, expected",
    [
        ("all", 1, [0, 1, 2, 3]),
        ("shortest", 1, [1]),  # tie 1/3 on 10 tokens: the lower sample index wins
        ("shortest", 2, [1, 3]),
        ("shortest", 3, [0, 1, 3]),
        ("longest", 1, [2]),
        ("longest", 2, [0, 2]),
        ("longest", 9, [0, 1, 2, 3]),  # keep > candidates: all of them
        ("scorer:tests.synthetic.scorers:character_count", 1, [3]),
        ("scorer:tests.synthetic.scorers:character_count", 2, [0, 3]),  # tie 0/2: sample 0
    ],
)
def test_ranking(spec, keep, expected):
    assert _kept(spec, keep) == expected


def test_subset_of_candidates():
    assert _kept("shortest", 1, samples=(0, 2, 3)) == [3]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("fastest", r"unknown --select strategy 'fastest'; known: \['all', 'longest', 'scorer'"),
        ("shortest:3", r"--select=shortest takes no argument"),
        ("scorer", r"needs scorer:pkg.module:function"),
        ("scorer:tests.synthetic.scorers", r"needs scorer:pkg.module:function"),
        ("scorer:tests.synthetic.no_such_module:f", r"cannot import 'tests.synthetic.no_such"),
        ("scorer:tests.synthetic.scorers:missing", r"has no function 'missing'"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(SelectionError, match=message):
        make_selector(spec)


def test_scorer_must_return_a_finite_number():
    selector = make_selector("scorer:tests.synthetic.scorers:not_a_number")
    with pytest.raises(SelectionError, match=r"returned 'high' for problem 'p' sample 0; it must"):
        selector("problem", _candidates(), 1)
