"""NoveltyBench's partition of one prompt's k responses into equivalence classes
(`src/partition.py` of novelty-bench/novelty-bench).

Greedy and order-dependent: responses are taken in sample order; each joins the first existing
class (in the order the classes were opened) whose *first member* it is equivalent to, else it
opens a new class. Class ids are 0, 1, ... in opening order; ``distinct_k`` = number of classes.

Equivalence tests, by name (:data:`EQUIVALENCE_TESTS`); both first apply NoveltyBench's rule for
short responses (:func:`short_response_rule`), which decides whenever either response has at
most 5 words:

* ``rouge1``: otherwise ROUGE-1 F > 0.458 (NoveltyBench's "unigram" alternative to its DeBERTa
  classifier, scored with the ``rouge-score`` package as the reference does);
* ``embedding``: otherwise cosine similarity of the sentence embeddings > ``threshold``
  (default :data:`EMBEDDING_THRESHOLD`; a heuristic for all-MiniLM-L6-v2, not calibrated
  against NoveltyBench's human labels).

In the reference, the short-response rule guards the classifier and the "unigram" test is
ROUGE-1 alone; here it guards both tests (as the issue specifies), so two short answers are
judged by their shared words rather than by a score meant for longer texts. Words are split on
whitespace only, as in the reference: "Paris" and "paris" share a word, "Paris" and "Paris." do
not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ROUGE1_THRESHOLD = 0.458
EMBEDDING_THRESHOLD = 0.9
SHORT_RESPONSE_WORDS = 5

# (representative index, candidate index) -> equivalent?
Equivalence = Callable[[int, int], bool]


def short_response_rule(first: str, second: str) -> bool | None:
    """NoveltyBench's rule when both responses have at most 5 words, else None (undecided).

    Words are ``text.strip().lower().split()``; with L the longer word count (<= 5), the two are
    equivalent iff 2 * |shared distinct words| >= L (two empty responses are equivalent).
    """
    first_words, second_words = first.strip().lower().split(), second.strip().lower().split()
    longer = max(len(first_words), len(second_words))
    if longer > SHORT_RESPONSE_WORDS:
        return None
    return 2 * len(set(first_words) & set(second_words)) >= longer


def partition(num_responses: int, equivalent: Equivalence) -> list[int]:
    """Class id of each of ``num_responses`` responses (rules in the module docstring).

    ``equivalent(i, j)`` is asked only with i the first member of a class opened before j.
    """
    first_members: list[int] = []
    classes = []
    for candidate in range(num_responses):
        match = next(
            (c for c, first in enumerate(first_members) if equivalent(first, candidate)), None
        )
        if match is None:
            match = len(first_members)
            first_members.append(candidate)
        classes.append(match)
    return classes


def rouge1_equivalence(responses: Sequence[str], embeddings=None, threshold=None) -> Equivalence:
    """The ``rouge1`` test over ``responses`` (``embeddings`` unused)."""
    del embeddings
    from rouge_score import rouge_scorer  # the diversity extra; checked by the eval up front

    scorer = rouge_scorer.RougeScorer(["rouge1"])
    limit = ROUGE1_THRESHOLD if threshold is None else threshold

    def equivalent(first: int, second: int) -> bool:
        short = short_response_rule(responses[first], responses[second])
        if short is not None:
            return short
        return scorer.score(responses[first], responses[second])["rouge1"].fmeasure > limit

    return equivalent


def embedding_equivalence(responses: Sequence[str], embeddings, threshold=None) -> Equivalence:
    """The ``embedding`` test: unit-norm ``embeddings`` float [k, D] of ``responses``."""
    similarity = np.asarray(embeddings, np.float64) @ np.asarray(embeddings, np.float64).T
    limit = EMBEDDING_THRESHOLD if threshold is None else threshold

    def equivalent(first: int, second: int) -> bool:
        short = short_response_rule(responses[first], responses[second])
        if short is not None:
            return short
        return bool(similarity[first, second] > limit)

    return equivalent


# name -> (responses, embeddings, threshold or None for the default) -> Equivalence
EQUIVALENCE_TESTS = {"rouge1": rouge1_equivalence, "embedding": embedding_equivalence}
DEFAULT_THRESHOLDS = {"rouge1": ROUGE1_THRESHOLD, "embedding": EMBEDDING_THRESHOLD}
