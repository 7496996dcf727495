"""Loader for the competition-math benchmarks vendored under ``reasonrl/assets/benchmarks``.

The files are carried by the package (see ``reasonrl/assets/benchmarks/README.md`` for their
provenance, licenses and the copyright caveat), so loading needs no network and no data
directory. Field names differ between files; :func:`load_benchmark` maps them onto
:class:`Problem`:

=========  ===============  ===============================================================
name       id field         notes
=========  ===============  ===============================================================
math500    ``unique_id``    MATH-500 (Lightman et al.); has ``solution``, ``subject``, ``level``
aime24     ``id``           AIME 2024 I+II, integer answers as strings
aime25     ``id``           AIME 2025 I+II, integer answers as strings
amc23      ``id``           AMC 12 2023 subset (40 problems), numeric answers, options removed
=========  ===============  ===============================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

__all__ = ["BENCHMARK_NAMES", "Problem", "load_benchmark"]

BENCHMARK_NAMES = ("math500", "aime24", "aime25", "amc23")


@dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes:
        id: stable identifier (``test/precalculus/807.json``, ``2024-I-1``, ``2023-12A-1``).
        problem: the problem statement (LaTeX allowed).
        answer: the reference final answer, as a string.
        subject: MATH subject (MATH-500 only).
        level: MATH difficulty 1-5 (MATH-500 only).
        solution: the reference solution ending in ``\\boxed{...}`` (MATH-500 only).
    """

    id: str
    problem: str
    answer: str
    subject: str | None = None
    level: int | None = None
    solution: str | None = None


def _benchmark_file(name: str):
    return resources.files("reasonrl") / "assets" / "benchmarks" / name / "test.jsonl"


def _to_problem(name: str, record: dict) -> Problem:
    if name == "math500":
        return Problem(
            id=record["unique_id"],
            problem=record["problem"],
            answer=str(record["answer"]),
            subject=record["subject"],
            level=int(record["level"]),
            solution=record["solution"],
        )
    return Problem(id=str(record["id"]), problem=record["problem"], answer=str(record["answer"]))


def load_benchmark(name: str) -> list[Problem]:
    """All problems of benchmark ``name`` (one of :data:`BENCHMARK_NAMES`), in file order."""
    if name not in BENCHMARK_NAMES:
        raise ValueError(f"unknown benchmark {name!r}; available: {list(BENCHMARK_NAMES)}")
    text = _benchmark_file(name).read_text(encoding="utf-8")
    return [_to_problem(name, json.loads(line)) for line in text.splitlines() if line.strip()]
