"""distinct-n, ROUGE-1 (against rouge-score) and the RL loop's per-group signals."""

import itertools

import numpy as np
import pytest

from reasonrl.diversity import distinct_n, group_diversity, mean_pairwise_rouge1, rouge1_fmeasure

TEXTS = [
    "",
    "   ",
    "Hello, world!",
    "hello world",
    "HELLO... WORLD??? hello",
    "The cat sat on the mat. The cat sat.",
    "A dog; a DOG: a dog-house",
    "naïve café — résumé 東京 42",
    "x=3.14, y=2*x; z = x^2 + y^2",
    "don't stop believin' (1981)",
    "\\boxed{42} and $\\frac{1}{2}$",
    "tabs\tand\nnew lines\r\n too",
]


def test_rouge1_equals_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    for first, second in itertools.product(TEXTS, repeat=2):
        expected = scorer.score(first, second)["rouge1"].fmeasure
        assert rouge1_fmeasure(first, second) == pytest.approx(expected, abs=1e-12), (
            first,
            second,
        )


def test_mean_pairwise_rouge1():
    texts = ["a b c", "a b d", "x y z"]
    expected = np.mean([rouge1_fmeasure(a, b) for a, b in itertools.combinations(texts, 2)])
    assert mean_pairwise_rouge1(texts) == pytest.approx(expected)
    assert mean_pairwise_rouge1(["same words", "same words"]) == 1.0
    assert np.isnan(mean_pairwise_rouge1(["alone"]))


def _reference_distinct(texts, n):
    grams = []
    for text in texts:
        words = text.lower().split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def test_distinct_n_equals_the_reference():
    for n in (1, 2, 3):
        assert distinct_n(TEXTS, n) == pytest.approx(_reference_distinct(TEXTS, n))
    assert distinct_n(["a b", "b a"], 1) == 0.5  # {a, b} of 4 unigrams
    assert distinct_n(["a b", "b a"], 2) == 1.0  # n-grams never cross texts: (a b), (b a)
    assert distinct_n(["The the", "THE"], 1) == pytest.approx(1 / 3)
    assert np.isnan(distinct_n(["one", ""], 2))
    with pytest.raises(ValueError):
        distinct_n(TEXTS, 0)


def test_group_diversity_means_over_groups():
    texts = ["a b", "a b", "c d", "e f", "e f", "e f"]
    answers = ["1", "1", None, "2", "3", None]
    signals = group_diversity(texts, answers, group_size=3)
    # group 1: answers {1, None} -> 2/3, group 2: {2, 3, None} -> 3/3
    assert signals["distinct_answer_fraction"] == pytest.approx((2 / 3 + 1) / 2)
    # group 1: pairs (ab,ab)=1, (ab,cd)=0, (ab,cd)=0 -> 1/3; group 2: all identical -> 1
    assert signals["pairwise_rouge1"] == pytest.approx((1 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_diversity(texts, answers, group_size=4)
