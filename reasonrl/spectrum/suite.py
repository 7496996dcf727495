"""Reading an eval suite: JSONL records of held-out tasks with their exact output distributions.

    {"id": "heldout-categorical-00", "family": "categorical",
     "description": "Name a planet: venus 50%, saturn 40%, earth 10%.",     # optional
     "samples": [{"output": "venus"}, {"input": "...", "output": "..."}, ...],
     "queries": [{"input": "...",                                            # optional
                  "candidates": ["venus", "saturn", "earth"], "probs": [0.5, 0.4, 0.1]}]}

`samples` feed the steerability eval (scored in context, in file order); each query is a prompt
(the description and its input) whose outputs the coverage eval samples and the distributional
eval scores. `reasonrl.synthetic.spectrum_suite` writes such files; the shipped held-out suite
is `DEFAULT_SUITE`. A record that cannot be used raises `SuiteError` naming "path:line".
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from reasonrl.data.spectrum_format import SpectrumSample, as_text, parse_samples
from reasonrl.errors import ReasonRLError
from reasonrl.paths import asset

DEFAULT_SUITE = asset("synthetic", "spectrum", "heldout.jsonl")


class SuiteError(ReasonRLError, ValueError):
    """An eval suite record that cannot be used ("path:line: what is wrong")."""


@dataclasses.dataclass(frozen=True)
class SuiteQuery:
    candidates: tuple[str, ...]
    probs: tuple[float, ...]
    input: str | None = None


@dataclasses.dataclass(frozen=True)
class SuiteTask:
    id: str
    family: str
    description: str | None
    samples: tuple[SpectrumSample, ...]
    queries: tuple[SuiteQuery, ...]


def _query(value, index: int) -> SuiteQuery:
    if not isinstance(value, dict):
        raise ValueError(f"query {index} must be an object")
    candidates, probs = value.get("candidates"), value.get("probs")
    if not isinstance(candidates, list) or not candidates:
        raise ValueError(f"query {index}: candidates must be a non-empty list")
    if not isinstance(probs, list) or len(probs) != len(candidates):
        raise ValueError(f"query {index}: probs must be a list as long as candidates")
    probs_array = np.asarray(probs, dtype=np.float64)
    if np.any(probs_array < 0) or not np.isclose(probs_array.sum(), 1.0, atol=1e-6):
        raise ValueError(f"query {index}: probs must be >= 0 and sum to 1, got {probs}")
    texts = tuple(as_text(c, f"query {index} candidate") for c in candidates)
    if len(set(texts)) != len(texts):
        raise ValueError(f"query {index}: candidates repeat")
    given = value.get("input")
    return SuiteQuery(
        candidates=texts,
        probs=tuple(float(p) for p in probs),
        input=None if given is None else as_text(given, f"query {index} input"),
    )


def _task(record) -> SuiteTask:
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    for field in ("id", "samples", "queries"):
        if field not in record:
            raise ValueError(f"record has no {field!r} field (it has {sorted(record)})")
    queries = record["queries"]
    if not isinstance(queries, list) or not queries:
        raise ValueError("queries must be a non-empty list")
    description = record.get("description")
    return SuiteTask(
        id=str(record["id"]),
        family=str(record.get("family", "")),
        description=None if description is None else as_text(description, "description"),
        samples=tuple(parse_samples(record["samples"])),
        queries=tuple(_query(q, i) for i, q in enumerate(queries)),
    )


def load_suite(path: str | Path = DEFAULT_SUITE, limit: int | None = None) -> list[SuiteTask]:
    """The tasks of a suite file (the first `limit` of them)."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"--suite {str(path)!r} does not exist")
    tasks = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                tasks.append(_task(json.loads(line)))
            except (ValueError, TypeError) as error:
                raise SuiteError(f"{path}:{number}: {error}") from None
            if limit is not None and len(tasks) == limit:
                break
    if not tasks:
        raise SuiteError(f"{path}: holds no tasks")
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise SuiteError(f"{path}: task ids repeat")
    return tasks
