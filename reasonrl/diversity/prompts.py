"""Prompt sets of the diversity eval: the vendored NoveltyBench sets or a user's JSONL file.

``load_prompts(name_or_path)``: ``noveltybench_curated`` (100 prompts with categories),
``noveltybench_wildchat`` (1,000, no category), both shipped in ``reasonrl/assets/diversity``
(provenance and licenses in its README), or the path of a JSONL file whose records hold a
``prompt`` string and optionally ``id`` (default ``line-<n>``) and ``category``.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path

from reasonrl.errors import ReasonRLError

BENCHMARK_FILES = {
    "noveltybench_curated": "noveltybench_curated.jsonl",
    "noveltybench_wildchat": "noveltybench_wildchat.jsonl",
}


class PromptFileError(ReasonRLError, ValueError):
    """A prompt file that cannot be used (the message names file:line)."""


@dataclasses.dataclass(frozen=True)
class DiversityPrompt:
    """One open-ended prompt: a stable ``id``, the ``prompt`` text, its ``category`` (or None)."""

    id: str
    prompt: str
    category: str | None = None


def _record(path: str, number: int, line: str) -> DiversityPrompt:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise PromptFileError(f"{path}:{number}: not a JSON line ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        raise PromptFileError(f"{path}:{number}: a record needs a 'prompt' string")
    category = record.get("category")
    return DiversityPrompt(
        id=str(record.get("id", f"line-{number}")),
        prompt=record["prompt"],
        category=None if category is None else str(category),
    )


def load_prompts(name_or_path: str) -> list[DiversityPrompt]:
    """The prompts of a vendored set (``BENCHMARK_FILES``) or a JSONL file, in file order.

    Raises:
        PromptFileError: a missing or empty file, a bad line, or an id used twice.
    """
    if name_or_path in BENCHMARK_FILES:
        source = resources.files("reasonrl") / "assets" / "diversity"
        path, text = name_or_path, (source / BENCHMARK_FILES[name_or_path]).read_text("utf-8")
    else:
        if not Path(name_or_path).is_file():
            raise PromptFileError(
                f"--benchmark {name_or_path!r}: not one of {sorted(BENCHMARK_FILES)} and not "
                f"a JSONL file of prompts"
            )
        path, text = name_or_path, Path(name_or_path).read_text("utf-8")
    prompts = [
        _record(path, number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not prompts:
        raise PromptFileError(f"{path}: holds no prompt")
    seen: dict[str, int] = {}
    for index, prompt in enumerate(prompts):
        if prompt.id in seen:
            raise PromptFileError(
                f"{path}: id {prompt.id!r} is used twice "
                f"(records {seen[prompt.id] + 1} and {index + 1})"
            )
        seen[prompt.id] = index
    return prompts
