r"""Is a predicted answer mathematically equivalent to the gold answer?

Pipeline for one pair (the first step that decides wins):

1. Empty prediction -> incorrect. Either side longer than
   :data:`~reasonrl.rewards.screening.MAX_ANSWER_CHARS` -> rejected (incorrect).
2. Either side that is a short sentence is reduced to the answer it states
   (:func:`~reasonrl.rewards.extraction.answer_from_sentence`: ``so x = $5$`` -> ``5``,
   ``The final answer is 5.`` -> ``5``, ``the correct option is **C**`` -> ``C``; both sides,
   so that every answer stays equivalent to itself); then
   :func:`~reasonrl.rewards.normalize.normalize_answer` on both sides (parent process, strings).
3. Gold is a multiple-choice letter (``B``, ``(B)``, ``\text{(B)}``) -> compare letters,
   case-insensitively; a prediction that is not a letter is incorrect.
4. Identical normalised strings -> correct (no sympy involved).
5. :func:`~reasonrl.rewards.screening.screen_answer` on both -> rejected (incorrect) for
   pathological input (huge powers and factorials, deep nesting).
6. math-verify ``parse`` + ``verify`` in a worker process of the
   :class:`~reasonrl.rewards.pool.GradingPool`, with a hard ``timeout_s``; a timeout or a worker
   error counts as incorrect. The worker reads ``i`` as the imaginary unit (see
   :mod:`~reasonrl.rewards.worker`).

Every outcome carries a ``status`` from :class:`Status`, so evals can report how many answers
were rejected or timed out instead of silently counting them wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasonrl.rewards.extraction import answer_from_sentence
from reasonrl.rewards.normalize import choice_letter, normalize_answer
from reasonrl.rewards.pool import GradingPool, get_default_pool
from reasonrl.rewards.screening import MAX_ANSWER_CHARS, screen_answer

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Status",
    "Verdict",
    "check_equivalence",
    "check_equivalence_batch",
    "is_equivalent",
]

DEFAULT_TIMEOUT_S = 3.0
"""Hard limit, in seconds, on the math-verify work for one pair."""


class Status:
    """Outcome labels shared by :class:`Verdict` and ``GradeResult``."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NO_ANSWER = "no_answer"  # nothing could be extracted / empty prediction
    REJECTED = "rejected"  # refused by the pre-checks, never sent to sympy
    TIMEOUT = "timeout"  # math-verify ran out of time
    ERROR = "error"  # the worker failed (crash, MemoryError, ...)


@dataclass(frozen=True)
class Verdict:
    """Result of an equivalence check. ``equivalent`` is True only for ``Status.CORRECT``."""

    equivalent: bool
    status: str
    detail: str = ""


def _as_gold(gold) -> str:
    if isinstance(gold, int) and not isinstance(gold, bool):
        gold = str(gold)
    if not isinstance(gold, str):
        raise TypeError(f"gold answer must be a str, got {type(gold).__name__}")
    if not gold.strip():
        raise ValueError("gold answer is empty")
    return gold


def _decide_locally(prediction: str | None, gold: str) -> Verdict | tuple[str, str]:
    """Steps 1-5 of the pipeline: a final Verdict, or the normalised pair for math-verify."""
    if prediction is None or not isinstance(prediction, str) or not prediction.strip():
        return Verdict(False, Status.NO_ANSWER, "empty prediction")
    for name, text in (("prediction", prediction), ("gold", gold)):
        if len(text) > MAX_ANSWER_CHARS:
            reason = f"{name} longer than {MAX_ANSWER_CHARS} characters"
            return Verdict(False, Status.REJECTED, reason)
    normalized_prediction = normalize_answer(answer_from_sentence(prediction))
    normalized_gold = normalize_answer(answer_from_sentence(gold))

    gold_letter = choice_letter(normalized_gold, uppercase_only=True)
    if gold_letter is not None:
        predicted_letter = choice_letter(normalized_prediction)
        if predicted_letter == gold_letter:
            return Verdict(True, Status.CORRECT, "same choice letter")
        return Verdict(False, Status.INCORRECT, f"choice {predicted_letter!r} != {gold_letter!r}")

    if not normalized_prediction:
        return Verdict(False, Status.NO_ANSWER, "prediction empty after normalisation")
    if normalized_prediction == normalized_gold:
        return Verdict(True, Status.CORRECT, "identical after normalisation")

    for name, text in (("prediction", normalized_prediction), ("gold", normalized_gold)):
        reason = screen_answer(text)
        if reason is not None:
            return Verdict(False, Status.REJECTED, f"{name}: {reason}")
    return normalized_prediction, normalized_gold


def _verdict_from_reply(reply) -> Verdict:
    if reply.status == "ok":
        if reply.equivalent:
            return Verdict(True, Status.CORRECT, "math-verify")
        return Verdict(False, Status.INCORRECT, "math-verify")
    if reply.status == "timeout":
        return Verdict(False, Status.TIMEOUT, reply.detail)
    return Verdict(False, Status.ERROR, reply.detail)


def check_equivalence(
    prediction: str | None,
    gold: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pool: GradingPool | None = None,
) -> Verdict:
    """Checks one prediction against one gold answer (see the module docstring).

    Args:
        prediction: an extracted answer (not a whole completion), or None.
        gold: the reference answer (``str``; an ``int`` is accepted and converted).
        timeout_s: hard limit on the math-verify work for this pair.
        pool: worker pool to use (default: the process-wide pool).
    """
    gold = _as_gold(gold)
    decided = _decide_locally(prediction, gold)
    if isinstance(decided, Verdict):
        return decided
    pool = pool or get_default_pool()
    return _verdict_from_reply(pool.verify(*decided, timeout_s=timeout_s))


def check_equivalence_batch(
    predictions: Sequence[str | None],
    golds: Sequence[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    num_workers: int | None = None,
    pool: GradingPool | None = None,
) -> list[Verdict]:
    """:func:`check_equivalence` for many pairs, fanned out over the worker pool.

    Identical (normalised) pairs are verified once, so 8 samples that agree cost one check.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions but {len(golds)} gold answers")
    golds = [_as_gold(gold) for gold in golds]
    verdicts: list[Verdict | None] = []
    pending: dict[tuple[str, str], list[int]] = {}
    for index, (prediction, gold) in enumerate(zip(predictions, golds)):
        decided = _decide_locally(prediction, gold)
        if isinstance(decided, Verdict):
            verdicts.append(decided)
        else:
            verdicts.append(None)
            pending.setdefault(decided, []).append(index)
    if pending:
        pool = pool or get_default_pool(num_workers)
        pairs = list(pending)
        replies = pool.verify_many(pairs, timeout_s=timeout_s, num_threads=num_workers)
        for pair, reply in zip(pairs, replies):
            verdict = _verdict_from_reply(reply)
            for index in pending[pair]:
                verdicts[index] = verdict
    return verdicts  # type: ignore[return-value]


def is_equivalent(
    prediction: str | None, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bool:
    r"""True if ``prediction`` is mathematically equivalent to ``gold``.

    ``0.5`` vs ``\frac{1}{2}`` is True; ``[1,2)`` vs ``[1,2]`` is False. Never raises on any
    prediction string; the math-verify work is cut off after ``timeout_s`` (a call can also wait
    for a free worker when all are busy, and for a worker's ~1 s start-up on first use).
    """
    return check_equivalence(prediction, gold, timeout_s=timeout_s).equivalent
