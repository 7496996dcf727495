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
* ``answer_is``       -- the last "answer is X" / "correct option is **C**" / "choice would be
  (B)" (anchors: ``answer``, ``option``, ``choice``, then ``is``, ``would be``...), to the end of
  its sentence.
* ``last_math_span``  -- the content of the last ``$...$``, ``$$...$$``, ``\(...\)`` or
  ``\[...\]`` span, provided no digit follows it (``so the area is $\sqrt{2}$.``); when a number
  comes later, that number is the later statement and ``last_number`` takes it.
* ``last_number``     -- the last number in the text (integer, decimal, ``1,000``, ``1{,}000``,
  ``1,\!000``, ``1\,000``, ``a/b`` or ``\frac{a}{b}`` with integer parts), the classic lenient
  fallback.

In every free-text candidate a leading math span is the answer (``The answer is $\frac{3}{4}$.``
gives ``\frac{3}{4}``), and otherwise the candidate ends with its first sentence.

:func:`answer_from_sentence` reduces an answer that is itself a short sentence to the answer it
states: the anchored fallbacks (``The final answer is 5.``, ``Answer: C``, ``the correct option
is **C**``), else the one math span in plain prose (``so x = $5$``). The equivalence checker runs
it on both answers of every pair.

Nothing here uses backtracking-heavy regular expressions: every pattern is linear in the input,
so a 100k-character completion is handled in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "BOX_COMMANDS",
    "DEFAULT_FALLBACKS",
    "FALLBACKS",
    "BoxedSearch",
    "answer_from_sentence",
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
    for match in pattern.finditer(text):
        last = match
    return last


def _candidate_after_last(anchor: re.Pattern[str], text: str) -> str | None:
    """The cleaned rest of the line after the last match of ``anchor``."""
    # Only the anchor is matched, so "Final Answer: The final answer is 12" finds the last one.
    match = _last_match(anchor, text)
    if match is None:
        return None
    line_end = text.find("\n", match.end())
    return _clean_candidate(text[match.end() : line_end if line_end >= 0 else len(text)])


_FINAL_ANSWER_IS = re.compile(r"final answer(?:\s+is)?[ \t]*[:：]?[ \t]*", re.IGNORECASE)


def _fallback_final_answer_is(text: str) -> str | None:
    return _candidate_after_last(_FINAL_ANSWER_IS, text)


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


_ANSWER_IS = re.compile(
    r"\b(?:answer|option|choice)[ \t]+(?:is|(?:would|will|should|must)[ \t]+be)\b"
    r"[ \t*]*[:：]?[ \t]*",
    re.IGNORECASE,
)


def _fallback_answer_is(text: str) -> str | None:
    return _candidate_after_last(_ANSWER_IS, text)


# Math delimiters, plus the two escapes that must not be read as one: `\$` (a dollar sign) and
# `\\` (a line break, so `\\[2pt]` opens nothing).
_SPAN_DELIMITER = re.compile(r"\\\$|\\\\|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_SPAN_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}


class _Span(NamedTuple):
    start: int  # of the opening delimiter
    content_start: int
    content_end: int
    end: int  # after the closing delimiter


def _math_spans(text: str) -> list[_Span]:
    """Every ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` span, left to right (one pass)."""
    spans = []
    opener = None
    for delimiter in _SPAN_DELIMITER.finditer(text):
        if opener is None:
            if delimiter.group() in _SPAN_CLOSER:
                opener = delimiter
        elif delimiter.group() == _SPAN_CLOSER[opener.group()]:
            spans.append(_Span(opener.start(), opener.end(), delimiter.start(), delimiter.end()))
            opener = None
    return spans


_DIGIT = re.compile(r"\d")


def _fallback_last_math_span(text: str) -> str | None:
    spans = _math_spans(text)
    if not spans or _DIGIT.search(text, spans[-1].end):
        return None
    content = text[spans[-1].content_start : spans[-1].content_end].strip()
    return content if 0 < len(content) <= _MAX_FALLBACK_CHARS else None


# A thousands separator as datasets write it: `1,000`, `1{,}000`, `1,\!000`, `1\,000`.
_THOUSANDS_SEPARATOR = r"(?:,|\{,\}|,\\!\s*|\\,)"
_NUMBER = re.compile(
    r"-?\\[dt]?frac\{\d+\}\{\d+\}"  # \frac{1}{2}
    r"|(?<![\w.])-?(?:\d{1,3}(?:" + _THOUSANDS_SEPARATOR + r"\d{3})+|\d+)"  # 1,000  1{,}000
    r"(?:\.\d+)?(?:/\d+(?![\d.]))?"  # 1,000.5  3/4
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
        "answer_is": _fallback_answer_is,
        "last_math_span": _fallback_last_math_span,
        "last_number": _fallback_last_number,
    }
)
"""All fallback extractors by name (read-only)."""

DEFAULT_FALLBACKS: tuple[str, ...] = (
    "final_answer_is",
    "answer_colon",
    "hash_answer",
    "answer_is",
    "last_math_span",
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


# Fallbacks that need an anchor phrase, so they cannot misread a plain answer such as `x = 5`.
_SENTENCE_FALLBACKS = ("final_answer_is", "answer_colon", "answer_is")
# What may surround a math span in a sentence: words and punctuation, no digits, no LaTeX.
_PROSE = re.compile(r"[A-Za-z\s.,:;!?'\"*=()\-]*")


def answer_from_sentence(answer: str) -> str:
    r"""The answer that a short sentence states, or ``answer`` unchanged.

    ``The final answer is 5.`` -> ``5``, ``Answer: C`` -> ``C``, ``the correct option is **C**``
    -> ``C`` (the anchored fallbacks); ``so x = $5$`` -> ``5`` (the one math span in plain prose).
    Anything else (``x = 5``, ``$1$ and $2$``, ``\text{(B)}``) is returned as is.
    """
    for name in _SENTENCE_FALLBACKS:
        candidate = FALLBACKS[name](answer)
        if candidate:
            return candidate
    spans = _math_spans(answer)
    if len(spans) == 1:
        span = spans[0]
        content = answer[span.content_start : span.content_end].strip()
        if content and all(
            _PROSE.fullmatch(prose) for prose in (answer[: span.start], answer[span.end :])
        ):
            return content
    return answer
