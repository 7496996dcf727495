r"""Pulling the final answer out of a model completion.

The primary rule is the content of the **last** ``\boxed{...}`` (or ``\fbox{...}``) in the text,
found with a brace-matching scanner (nested groups such as ``\frac{1}{2}`` are fine, escaped
braces ``\{ \}`` do not count). ``\boxed 5`` / ``\boxed5`` (no braces) yields the token up to the
next whitespace or ``$``.

If the last box command is *invalid* -- its braces never close (a truncated generation) or it is
empty (``\boxed{}``) -- there is no boxed answer, and the fallbacks only see the text *before* that
command: what sits inside an unclosed box is never graded. Earlier boxes are not used either:
the last box is the model's final word, and an earlier one is an intermediate result.

Fallbacks are tried in order when there is no boxed answer. They are named, so callers can pick
them explicitly (``fallbacks=("answer_colon",)``) or switch them off (``fallbacks=False``):

* ``final_answer_is`` -- the last "final answer is X" / "Final Answer: X" (Minerva format).
* ``answer_colon``    -- the last line that starts with "Answer:" (markdown bold allowed).
* ``hash_answer``     -- the last GSM8K-style "#### X" line.
* ``last_number``     -- the last number in the text (integer, decimal, ``1,000``, ``a/b`` or
  ``\frac{a}{b}`` with integer parts), the classic lenient fallback.

Nothing here uses backtracking-heavy regular expressions: every pattern is linear in the input,
so a 100k-character completion is handled in milliseconds.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

__all__ = [
    "BOX_COMMANDS",
    "DEFAULT_FALLBACKS",
    "FALLBACKS",
    "BoxedSearch",
    "extract_answer",
    "find_last_boxed",
]

BOX_COMMANDS = ("\\boxed", "\\fbox")

# Fallback candidates longer than this are cut at the limit (they are single-line answers).
_MAX_FALLBACK_CHARS = 300


class BoxedSearch:
    """Outcome of :func:`find_last_boxed`.

    Attributes:
        answer: content of the last box, stripped, or ``None`` when there is no valid last box.
        start: index in the text where the last box command starts (``len(text)`` when there is
            no box command at all). Fallbacks only look at ``text[:start]``.
    """

    __slots__ = ("answer", "start")

    def __init__(self, answer: str | None, start: int):
        self.answer = answer
        self.start = start

    def __repr__(self) -> str:
        return f"BoxedSearch(answer={self.answer!r}, start={self.start})"


def _find_last_box_command(text: str, end: int) -> tuple[int, int] | None:
    """Returns ``(start, end_of_command_name)`` of the last box command before ``end``."""
    while end > 0:
        best = -1
        best_len = 0
        for command in BOX_COMMANDS:
            idx = text.rfind(command, 0, end)
            if idx > best:
                best, best_len = idx, len(command)
        if best < 0:
            return None
        name_end = best + best_len
        # `\fboxsep`, `\boxedanswer`: a longer command name, not a box.
        if name_end < len(text) and text[name_end].isalpha():
            end = best
            continue
        return best, name_end
    return None


def _matching_brace(text: str, open_idx: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_idx``; escaped braces are skipped."""
    depth = 0
    i = open_idx
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2  # `\{`, `\}` and `\\` are single tokens that never open or close a group
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


_UNBRACED_TOKEN = re.compile(r"[^\s$]+")


def find_last_boxed(text: str) -> BoxedSearch:
    r"""Finds the content of the last ``\boxed``/``\fbox`` command in ``text``.

    Returns a :class:`BoxedSearch`; ``answer`` is ``None`` if there is no box command, or if the
    last one is unclosed or empty (then ``start`` marks where the invalid box begins).
    """
    found = _find_last_box_command(text, len(text))
    if found is None:
        return BoxedSearch(None, len(text))
    start, pos = found
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos < len(text) and text[pos] == "{":
        close = _matching_brace(text, pos)
        if close is None:
            return BoxedSearch(None, start)
        content = text[pos + 1 : close].strip()
        return BoxedSearch(content or None, start)
    match = _UNBRACED_TOKEN.match(text, pos)
    if match is None:
        return BoxedSearch(None, start)
    token = match.group(0).rstrip(".,;:")
    return BoxedSearch(token or None, start)


# --------------------------------------------------------------------------------------------
# Fallbacks. Each takes the text (before any invalid box) and returns a candidate or None.
# --------------------------------------------------------------------------------------------

_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_BOLD_OR_SPACE = re.compile(r"^(?:\*\*|\s)+|(?:\*\*|\s)+$")


def _clean_candidate(candidate: str) -> str | None:
    """Trims a free-text answer: the leading math span if any, markdown bold, final period."""
    candidate = candidate[:_MAX_FALLBACK_CHARS].strip()
    candidate = _BOLD_OR_SPACE.sub("", candidate)
    span = _MATH_SPAN.match(candidate)
    if span is not None:
        candidate = next(group for group in span.groups() if group is not None)
    else:
        # Free text: cut at the end of the first sentence ("17. I hope it is correct.").
        sentence_end = re.search(r"\.(?:\s|$)", candidate)
        if sentence_end is not None:
            candidate = candidate[: sentence_end.start()]
    candidate = _BOLD_OR_SPACE.sub("", candidate).strip().rstrip(".,;:").strip()
    return candidate or None


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text):
        pass
    return last


_FINAL_ANSWER_IS = re.compile(r"final answer(?:\s+is)?[ \t]*[:：]?[ \t]*", re.IGNORECASE)


def _fallback_final_answer_is(text: str) -> str | None:
    # Only the anchor is matched, so "Final Answer: The final answer is 12" finds the last one.
    match = _last_match(_FINAL_ANSWER_IS, text)
    if match is None:
        return None
    line_end = text.find("\n", match.end())
    return _clean_candidate(text[match.end() : line_end if line_end >= 0 else len(text)])


_ANSWER_COLON = re.compile(
    r"^[ \t>#*_]*answer[ \t*_]*[:：][ \t*_]*([^\n]+)$", re.IGNORECASE | re.MULTILINE
)


def _fallback_answer_colon(text: str) -> str | None:
    match = _last_match(_ANSWER_COLON, text)
    return None if match is None else _clean_candidate(match.group(1))


_HASH_ANSWER = re.compile(r"^[ \t]*####[ \t]*([^\n]+)$", re.MULTILINE)


def _fallback_hash_answer(text: str) -> str | None:
    match = _last_match(_HASH_ANSWER, text)
    return None if match is None else _clean_candidate(match.group(1))


_NUMBER = re.compile(
    r"-?\\[dt]?frac\{\d+\}\{\d+\}"  # \frac{1}{2}
    r"|(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?![\d.]))?"  # 1,000.5  3/4
    r"|(?<![\w.])-?\.\d+"  # .5
)


def _fallback_last_number(text: str) -> str | None:
    match = _last_match(_NUMBER, text)
    return None if match is None else match.group(0)


FALLBACKS: Mapping[str, Callable[[str], str | None]] = MappingProxyType(
    {
        "final_answer_is": _fallback_final_answer_is,
        "answer_colon": _fallback_answer_colon,
        "hash_answer": _fallback_hash_answer,
        "last_number": _fallback_last_number,
    }
)
"""All fallback extractors by name (read-only)."""

DEFAULT_FALLBACKS: tuple[str, ...] = (
    "final_answer_is",
    "answer_colon",
    "hash_answer",
    "last_number",
)
"""Fallbacks used by ``extract_answer(..., fallbacks=True)``, tried in this order."""


def _resolve_fallbacks(fallbacks: bool | Sequence[str]) -> tuple[str, ...]:
    if fallbacks is True:
        return DEFAULT_FALLBACKS
    if fallbacks is False or fallbacks is None:
        return ()
    if isinstance(fallbacks, str):
        raise TypeError("fallbacks must be a bool or a sequence of fallback names, not a str")
    names = tuple(fallbacks)
    unknown = [name for name in names if name not in FALLBACKS]
    if unknown:
        raise ValueError(f"unknown fallback(s) {unknown}; known: {sorted(FALLBACKS)}")
    return names


def extract_answer(text: str, *, fallbacks: bool | Sequence[str] = True) -> str | None:
    r"""Returns the final answer in a completion, or ``None`` if there is none.

    Args:
        text: the model completion (untrusted; any content, any length).
        fallbacks: ``True`` for :data:`DEFAULT_FALLBACKS`, ``False`` for boxed answers only, or
            a sequence of names from :data:`FALLBACKS` to try in that order.

    Never raises for any string input.
    """
    names = _resolve_fallbacks(fallbacks)
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    boxed = find_last_boxed(text)
    if boxed.answer is not None:
        return boxed.answer
    visible = text[: boxed.start]
    for name in names:
        candidate = FALLBACKS[name](visible)
        if candidate:
            return candidate
    return None
