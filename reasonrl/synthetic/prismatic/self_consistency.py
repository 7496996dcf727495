"""Self-consistency labels: the majority answer of n samples, kept when enough of them agree.

For one problem with n sampled completions:

1. every completion's final answer is extracted (``reasonrl.rewards.extract_answer``: parsed,
   never executed); a sample with no answer, or one that is empty after the grader's
   normalisation, is *invalid*;
2. valid answers are grouped with the grader's equivalence: answers identical after
   normalisation share a class; two distinct normalised answers are merged when
   ``check_equivalence_batch`` finds either one equivalent to the other (math-verify in worker
   processes with a timeout), and classes are the connected components of those merges;
3. the majority class is the largest (a tie for the largest is no majority); its share is
   votes / valid answers;
4. the problem is kept when there is a majority and share >= ``threshold``; its label is the
   first (by sample index) answer of the majority class, and the kept solution is the first
   majority sample that finished (did not hit max_new_tokens), when there is one.

Problems not kept are returned with the first reason that applies (``no_valid_answer``,
``below_threshold``, ``tie`` (two largest classes at or above the threshold),
``no_finished_majority_sample``; the caller adds ``prompt_too_long``), for the caller to report.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from reasonrl.rewards.equivalence import check_equivalence_batch
from reasonrl.rewards.extraction import answer_from_sentence
from reasonrl.rewards.normalize import normalize_answer

# (predictions, golds) -> one bool per pair: is predictions[i] equivalent to golds[i]?
EquivalenceFn = Callable[[Sequence[str], Sequence[str]], Sequence[bool]]


def grader_equivalence(timeout_s: float, num_workers: int | None = None) -> EquivalenceFn:
    """The math grader's equivalence, batched over a worker pool."""

    def equivalent(predictions, golds):
        verdicts = check_equivalence_batch(
            predictions, golds, timeout_s=timeout_s, num_workers=num_workers
        )
        return [verdict.equivalent for verdict in verdicts]

    return equivalent


@dataclasses.dataclass(frozen=True)
class Vote:
    """The outcome for one problem.

    Attributes:
        classes: int [n] class of every sample, -1 where invalid.
        valid: number of valid answers.
        votes: size of the majority class (0 without one).
        agreement: votes / valid (0.0 without valid answers).
        majority: class id of the unique largest class, or -1 (no valid answer, or a tie).
    """

    classes: np.ndarray
    valid: int
    votes: int
    agreement: float
    majority: int


def normalized(answer: str | None) -> str:
    """The grader's normal form of an extracted answer ('' for none)."""
    return normalize_answer(answer_from_sentence(answer)) if answer else ""


def answer_classes(
    answer_sets: Sequence[Sequence[str | None]], equivalent: EquivalenceFn
) -> list[np.ndarray]:
    """Per problem, int [n] class ids (0, 1, ... by first appearance; -1 for invalid answers).

    All problems' pairs of distinct normalised answers go to ``equivalent`` in one call (both
    orders: a pair merges when either holds).
    """
    forms = [[normalized(answer) for answer in answers] for answers in answer_sets]
    distinct = [list(dict.fromkeys(form for form in problem if form)) for problem in forms]
    pairs = [
        (problem, i, j)
        for problem, values in enumerate(distinct)
        for i, j in itertools.combinations(range(len(values)), 2)
    ]
    left = [distinct[p][i] for p, i, _ in pairs]
    right = [distinct[p][j] for p, _, j in pairs]
    merged = np.zeros(len(pairs), bool)
    if pairs:
        verdicts = np.asarray(equivalent(left + right, right + left), bool)
        merged = verdicts.reshape(2, len(pairs)).any(axis=0)
    parents = [list(range(len(values))) for values in distinct]
    for (problem, i, j), same in zip(pairs, merged):
        if same:
            _union(parents[problem], i, j)
    return [
        _numbered(problem_forms, values, parent)
        for problem_forms, values, parent in zip(forms, distinct, parents)
    ]


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        i = parent[i]
    return i


def _union(parent: list[int], i: int, j: int) -> None:
    a, b = _root(parent, i), _root(parent, j)
    parent[max(a, b)] = min(a, b)


def _numbered(forms: list[str], distinct: list[str], parent: list[int]) -> np.ndarray:
    """Class ids of ``forms`` numbered by first appearance of their component."""
    roots = [_root(parent, i) for i in range(len(distinct))]
    renumber = {root: k for k, root in enumerate(dict.fromkeys(roots))}
    index = {form: renumber[roots[i]] for i, form in enumerate(distinct)}
    return np.asarray([index[form] if form else -1 for form in forms], np.int64)


def majority_vote(classes: np.ndarray) -> Vote:
    """The majority class of int [n] class ids (-1 = invalid), see the module docstring."""
    classes = np.asarray(classes)
    valid = int((classes >= 0).sum())
    if valid == 0:
        return Vote(classes, 0, 0, 0.0, -1)
    counts = np.bincount(classes[classes >= 0])
    votes = int(counts.max())
    unique = int((counts == votes).sum()) == 1
    return Vote(classes, valid, votes, votes / valid, int(counts.argmax()) if unique else -1)


def rejection_reason(vote: Vote, finished: np.ndarray, threshold: float) -> str | None:
    """Why the problem is not kept (None: kept); ``finished`` bool [n], sample did not hit the
    token limit."""
    if vote.valid == 0:
        return "no_valid_answer"
    if vote.agreement < threshold:
        return "below_threshold"
    if vote.majority < 0:
        return "tie"
    if not (finished & (vote.classes == vote.majority)).any():
        return "no_finished_majority_sample"
    return None
