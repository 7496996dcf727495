"""NoveltyBench partition, equivalence tests and scores against independent references."""

import bisect
import itertools

import numpy as np
import pytest

from reasonrl.diversity import (
    EQUIVALENCE_TESTS,
    NOVELTYBENCH_REWARD_THRESHOLDS,
    novelty_scores,
    partition,
    quality_buckets,
    short_response_rule,
)


def reference_partition(n, equivalent):
    """NoveltyBench's src/partition.py loop, transcribed: each unassigned response opens a class
    and claims every later unassigned response equivalent to it."""
    classes, first_members = [-1] * n, []
    for i in range(n):
        if classes[i] >= 0:
            continue
        classes[i] = len(first_members)
        for j in range(i + 1, n):
            if classes[j] == -1 and equivalent(i, j):
                classes[j] = len(first_members)
        first_members.append(i)
    return classes


def reference_scores(classes, qualities, patience=0.8):
    """NoveltyBench's src/score.py: duplicates score 0, np.average with weights p^i."""
    generation_scores, seen = [], 0
    for class_id, quality in zip(classes, qualities):
        if class_id == seen:
            generation_scores.append(quality)
            seen += 1
        else:
            generation_scores.append(0)
    weights = patience ** np.arange(len(classes))
    return seen, float(np.average(generation_scores, weights=weights))


def test_partition_equals_the_reference_on_random_non_transitive_relations():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 12))
        relation = rng.random((n, n)) < rng.random()  # neither symmetric nor transitive
        equivalent = lambda i, j, r=relation: bool(r[i, j])  # noqa: E731
        assert partition(n, equivalent) == reference_partition(n, equivalent), trial


def test_partition_depends_on_order():
    # A ~ B and B ~ C but not A ~ C: whoever comes first decides.
    pairs = {frozenset("AB"), frozenset("BC")}
    for order, expected in ((["A", "B", "C"], [0, 0, 1]), (["B", "A", "C"], [0, 0, 0])):
        equivalent = lambda i, j, o=order: frozenset((o[i], o[j])) in pairs  # noqa: E731
        assert partition(3, equivalent) == expected


def test_each_response_is_compared_with_first_members_only():
    asked = []

    def equivalent(first, candidate):
        asked.append((first, candidate))
        return candidate == 1  # response 1 joins class 0; no one else joins anything

    assert partition(4, equivalent) == [0, 0, 1, 2]
    assert asked == [(0, 1), (0, 2), (0, 3), (2, 3)]


@pytest.mark.parametrize(
    "first, second, expected",
    [
        ("", "", True),  # no words: 0 >= 0
        ("   ", "\n", True),
        ("", "word", False),
        ("Paris", "paris", True),  # lower-cased
        ("Paris", "Paris.", False),  # split on whitespace only, as the reference
        ("a b c d e", "a b c x y", True),  # 2 * 3 >= 5
        ("a b c d e", "a b x y z", False),  # 2 * 2 < 5
        ("the the the", "the", False),  # shared distinct words: 1; longer: 3
        ("red blue", "blue red", True),
        ("one two three four five six", "one two three four five six", None),  # 6 words
        ("one", "one two three four five six", None),  # the longer decides
    ],
)
def test_short_response_rule(first, second, expected):
    assert short_response_rule(first, second) == expected
    assert short_response_rule(second, first) == expected


def test_rouge1_test_uses_the_short_rule_then_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    responses = [
        "Paris.",
        "paris",
        "The capital of France is Paris, a city on the Seine river.",
        "Paris is the capital of France and lies on the river Seine.",
        "My favourite colour is a deep shade of blue like the ocean.",
    ]
    equivalent = EQUIVALENCE_TESTS["rouge1"](responses, None, None)
    assert not equivalent(0, 1)  # short rule: "paris." != "paris"
    for i, j in itertools.combinations(range(2, 5), 2):
        score = scorer.score(responses[i], responses[j])["rouge1"].fmeasure
        assert equivalent(i, j) == (score > 0.458), (i, j, score)
    assert equivalent(2, 3) and not equivalent(2, 4)
    assert EQUIVALENCE_TESTS["rouge1"](responses, None, 0.99)(2, 3) is False


def test_embedding_test_uses_the_short_rule_then_cosine():
    long = ["word " * 8 + str(i) for i in range(3)]
    responses = ["yes", "no", *long]
    embeddings = np.array([[1, 0], [1, 0], [1, 0], [0.95, 0.312], [0, 1]], float)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    equivalent = EQUIVALENCE_TESTS["embedding"](responses, embeddings, None)  # default 0.9
    assert not equivalent(0, 1)  # identical embeddings, but the short rule decides
    assert equivalent(2, 3) and not equivalent(2, 4)
    assert not EQUIVALENCE_TESTS["embedding"](responses, embeddings, 0.96)(2, 3)


def test_scores_equal_the_reference_and_normalise_by_the_patience_sum():
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(1, 15))
        relation = rng.random((k, k)) < 0.4
        classes = partition(k, lambda i, j, r=relation: bool(r[i, j]))
        qualities = rng.integers(1, 11, size=k)
        patience = float(rng.uniform(0.1, 1.0))
        scores = novelty_scores(classes, qualities, patience)
        distinct, utility = reference_scores(classes, qualities, patience)
        assert scores.distinct == distinct == len(set(classes))
        assert scores.utility == pytest.approx(utility, rel=1e-12)


def test_utility_examples():
    all_same = novelty_scores([0] * 10)  # one class, u = 1: 1 / sum(0.8^i), not 1 / 10
    assert all_same.distinct == 1
    assert all_same.utility == pytest.approx(0.2 / (1 - 0.8**10))
    assert all_same.generation_scores == (1.0,) + (0.0,) * 9  # duplicates count 0
    all_new = novelty_scores(list(range(10)), [5] * 10)
    assert (all_new.distinct, all_new.utility) == (10, pytest.approx(5.0))
    late = novelty_scores([0, 0, 1], [10, 10, 10], patience=0.5)
    assert late.utility == pytest.approx((10 + 0 + 0.25 * 10) / (1 + 0.5 + 0.25))
    with pytest.raises(ValueError, match="opening order"):
        novelty_scores([1, 0])


def test_quality_buckets_are_bisect_left_plus_one():
    thresholds = NOVELTYBENCH_REWARD_THRESHOLDS
    rewards = [-100.0, *thresholds, *(t + 1e-9 for t in thresholds), -6.1, 0.0, 100.0]
    expected = [bisect.bisect_left(thresholds, r) + 1 for r in rewards]
    assert quality_buckets(rewards).tolist() == expected
    assert quality_buckets([thresholds[0]]).tolist() == [1]  # a tie stays in the lower bucket
    assert quality_buckets([thresholds[-1] + 1e-9]).tolist() == [10]
    with pytest.raises(ValueError, match="increase strictly"):
        quality_buckets([0.0], [1.0, 1.0])
