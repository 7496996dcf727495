"""Which graded-correct teacher samples of a problem become SFT records, by strategy name.

``--select`` takes ``name`` or ``name:argument``; names are keys of :data:`SELECTION_STRATEGIES`:

==============================  ==================================================================
``all``                         every correct sample (``keep_per_problem`` does not apply)
``shortest``                    the ``keep_per_problem`` correct samples with the fewest tokens
``longest``                     the ``keep_per_problem`` correct samples with the most tokens
``scorer:pkg.module:function``  the ``keep_per_problem`` correct samples that a user function
                                ``score(problem: str, completion: str) -> float`` rates highest
                                ("active inheritance": steer the student towards an attribute)
==============================  ==================================================================

Ties are broken by the lower sample index, so a selection is deterministic. The scorer is code
the user names on the command line, imported with :mod:`importlib`; it receives the problem
statement and the generated completion as strings (the completion is model output: scorers must
treat it as untrusted data and never execute it).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Sequence

from reasonrl.errors import ReasonRLError


class SelectionError(ReasonRLError, ValueError):
    """A bad ``--select`` value, an unimportable scorer, or a scorer returning a non-number."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One graded teacher sample.

    Attributes:
        problem_id: id of the problem it answers.
        sample: its index among the problem's ``num_samples`` samples.
        completion: the generated text (no assistant prefix, no final stop token).
        num_tokens: generated tokens, a final stop token included.
        finish_reason: ``"stop"`` or ``"length"``.
        answer: the answer the grader extracted, or None.
        correct: the grader's verdict.
        status: the grader's status label.
    """

    problem_id: str
    sample: int
    completion: str
    num_tokens: int
    finish_reason: str
    answer: str | None
    correct: bool
    status: str


# (problem text, candidates of that problem, keep_per_problem) -> the kept candidates.
Selector = Callable[[str, Sequence[Candidate], int], list[Candidate]]


def _top(
    candidates: Sequence[Candidate], keep: int, key: Callable[[Candidate], float]
) -> list[Candidate]:
    """The ``keep`` candidates with the highest ``key``; ties go to the lower sample index."""
    ranked = sorted(candidates, key=lambda candidate: (-key(candidate), candidate.sample))
    return ranked[:keep]


def _no_argument(name: str, argument: str | None) -> None:
    if argument is not None:
        raise SelectionError(f"--select={name} takes no argument, got {name}:{argument}")


def _all(argument: str | None) -> Selector:
    _no_argument("all", argument)
    return lambda problem, candidates, keep: list(candidates)


def _shortest(argument: str | None) -> Selector:
    _no_argument("shortest", argument)
    return lambda problem, candidates, keep: _top(candidates, keep, lambda c: -c.num_tokens)


def _longest(argument: str | None) -> Selector:
    _no_argument("longest", argument)
    return lambda problem, candidates, keep: _top(candidates, keep, lambda c: c.num_tokens)


def load_scorer(target: str) -> Callable[[str, str], float]:
    """The function ``module:function`` names (imported, never downloaded)."""
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise SelectionError(
            f"--select=scorer needs scorer:pkg.module:function, got scorer:{target}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SelectionError(
            f"--select=scorer:{target}: cannot import {module_name!r} ({error})"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SelectionError(
            f"--select=scorer:{target}: module {module_name!r} has no function {function_name!r}"
        )
    return function


def _scorer(argument: str | None) -> Selector:
    if argument is None:
        raise SelectionError("--select=scorer needs scorer:pkg.module:function")
    score = load_scorer(argument)

    def checked_score(problem: str, candidate: Candidate) -> float:
        raw = score(problem, candidate.completion)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(raw, bool) or not math.isfinite(value):
            raise SelectionError(
                f"scorer {argument} returned {raw!r} for problem {candidate.problem_id!r} "
                f"sample {candidate.sample}; it must return a finite float"
            )
        return value

    def select(problem: str, candidates: Sequence[Candidate], keep: int) -> list[Candidate]:
        scores = {candidate.sample: checked_score(problem, candidate) for candidate in candidates}
        return _top(candidates, keep, lambda candidate: scores[candidate.sample])

    return select


# Strategy name -> factory(argument after the first ":" or None) -> Selector.
SELECTION_STRATEGIES: dict[str, Callable[[str | None], Selector]] = {
    "all": _all,
    "shortest": _shortest,
    "longest": _longest,
    "scorer": _scorer,
}


def make_selector(spec: str) -> Selector:
    """The selector ``spec`` (``name`` or ``name:argument``) describes."""
    name, separator, argument = spec.partition(":")
    if name not in SELECTION_STRATEGIES:
        raise SelectionError(
            f"unknown --select strategy {name!r}; known: {sorted(SELECTION_STRATEGIES)}"
        )
    return SELECTION_STRATEGIES[name](argument if separator else None)
