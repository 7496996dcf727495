"""Grading whole completions: extract the final answer, then check it against the gold answer.

This is the single entry point evals and RL rewards share, so both count the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasonrl.rewards.equivalence import (
    DEFAULT_TIMEOUT_S,
    Status,
    Verdict,
    check_equivalence,
    check_equivalence_batch,
)
from reasonrl.rewards.extraction import extract_answer

__all__ = ["GradeResult", "grade", "grade_batch"]


@dataclass(frozen=True)
class GradeResult:
    """The grade of one completion.

    Attributes:
        answer: the extracted final answer, or ``None`` if none was found.
        correct: whether it is equivalent to the gold answer.
        status: one of the :class:`~reasonrl.rewards.equivalence.Status` labels
            (``correct``, ``incorrect``, ``no_answer``, ``rejected``, ``timeout``, ``error``).
        detail: a short human-readable reason (for debugging evals).
    """

    answer: str | None
    correct: bool
    status: str
    detail: str = ""


def _result(answer: str | None, verdict: Verdict) -> GradeResult:
    if answer is None:
        return GradeResult(None, False, Status.NO_ANSWER, "no final answer found")
    return GradeResult(answer, verdict.equivalent, verdict.status, verdict.detail)


def grade(
    completion: str,
    gold: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    fallbacks: bool | Sequence[str] = True,
) -> GradeResult:
    """Grades one completion against its gold answer.

    Args:
        completion: the model's full output (untrusted).
        gold: the reference answer.
        timeout_s: hard limit on the equivalence check.
        fallbacks: answer-extraction fallbacks, see :func:`~reasonrl.rewards.extract_answer`.
    """
    answer = extract_answer(completion, fallbacks=fallbacks)
    # Called even without an answer: it validates the gold answer (and returns NO_ANSWER).
    verdict = check_equivalence(answer, gold, timeout_s=timeout_s)
    return _result(answer, verdict)


def grade_batch(
    completions: Sequence[str],
    golds: Sequence[str],
    *,
    num_workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    fallbacks: bool | Sequence[str] = True,
) -> list[GradeResult]:
    """Grades many completions, fanning the sympy work out over ``num_workers`` processes.

    ``golds[i]`` is the gold answer of ``completions[i]`` (repeat a problem's gold for each of
    its samples). Results are in input order. Duplicate answers to the same problem are
    verified once.
    """
    if len(completions) != len(golds):
        raise ValueError(f"{len(completions)} completions but {len(golds)} gold answers")
    answers = [extract_answer(completion, fallbacks=fallbacks) for completion in completions]
    verdicts = check_equivalence_batch(answers, golds, timeout_s=timeout_s, num_workers=num_workers)
    return [_result(answer, verdict) for answer, verdict in zip(answers, verdicts)]
