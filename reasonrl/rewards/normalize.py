r"""String-level answer normalisation applied before math-verify.

math-verify already handles most notation (``\dfrac``/``\tfrac``, ``\left( \right)``, ``\!``,
``^\circ``, ``\%``, ``\text{ cm}``, ``1,000``, ``x = 3``, intervals, sets, matrices). This module
only adds what it gets wrong or what we want decided by an explicit, documented rule:

* Unicode math (``−``, ``°``, ``π``, ``∞``, ``×``, ``·``, ``≤``, ``≥``, ``√``, no-break
  spaces).
* Math delimiters (``$...$``, ``\(...\)``, ``\[...\]``; any other ``$`` is currency or markup and
  is dropped) and a trailing sentence period (``\boxed{5.}``).
* Thousands separators written as LaTeX spaces (``1\,000``, ``1\;000``, ``1~000``, ``1{,}000``),
  which math-verify reads as a product; a plain-comma number (``1,000,000``) only when it is the
  *whole* answer, so tuples and lists like ``(1,2)`` or ``1,5`` are never merged.
* Currency and units: ``\$``, ``$``, and trailing unit words after a plain numeric value
  (``5 dollars``, ``12\text{ square units}``, ``15\mbox{ cm}^2``). Units are not graded: ``5 cm``
  equals ``5``. Words that carry math meaning (``pi``, ``percent``, ``and``...) are kept.
* Degrees: a trailing ``^\circ`` after a numeric value is dropped (``30^\circ`` equals ``30``;
  radians are *not* converted, so ``\frac{\pi}{6}`` does not equal ``30^\circ``).

Percent policy (math-verify's, kept on purpose): ``X\%`` equals both ``X`` and ``X/100``
(``50\%`` matches ``50`` and ``0.5``, but ``50`` does not match ``0.5``).

Multiple choice: :func:`choice_letter` recognises ``B``, ``(B)``, ``\text{(B)}``,
``\textbf{(B) } 42`` ... and the equivalence checker compares letters directly whenever the gold
answer is a single capital letter.

All functions are pure string operations whose cost is linear in the input length; they run in
the parent process on untrusted text, never call sympy and never raise on any string.
"""

from __future__ import annotations

import re

__all__ = ["choice_letter", "normalize_answer"]

_UNICODE_REPLACEMENTS = {
    "\u2212": "-",  # minus sign
    "\u00b0": "^\\circ",  # degree sign
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u00d7": "\\times ",
    "\u00b7": "\\cdot ",
    "\u22c5": "\\cdot ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\ne ",
    "\u221a": "\\sqrt",
    "\u00a0": " ",  # no-break space
    "\u2009": " ",  # thin space
    "\u202f": " ",  # narrow no-break space
}
_UNICODE_TABLE = str.maketrans(_UNICODE_REPLACEMENTS)

_WRAPPING_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))

# A LaTeX space between digit groups is a thousands separator: 1\,000 -> 1000.
_LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\\;|\\:|\\ |~|\{,\})(?=\d{3}(?!\d))")
_NEGATIVE_SPACE = re.compile(r"\\!")
_LATEX_SPACES = re.compile(r"\\[,;:]|\\q?quad\b|(?<!\\)\\ |~")
_WHITESPACE = re.compile(r"\s+")
_COMMA_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")

_TEXT_COMMAND = r"\\(?:text|textrm|textnormal|textit|textbf|textup|mbox|mathrm|rm|operatorname)\s*"
# One or more unit chunks at the end: `\text{ square units}`, `dollars`, `\mbox{ cm}^2`. Each
# chunk is one whole word or one text group, so a tail can be split into chunks in one way only
# (no backtracking blow-up).
_UNIT_CHUNK = (
    r"(?:\s|\\[,;:!]|~)*"
    r"(?:" + _TEXT_COMMAND + r"\{\s*[A-Za-z][A-Za-z .\-]*\}"
    r"|(?<![\\A-Za-z])[A-Za-z]{2,}(?![A-Za-z])\.?)"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?"
)
_UNIT_TAIL = re.compile(r"(?:" + _UNIT_CHUNK + r")+\s*$")
_WORD = re.compile(r"[A-Za-z]+")
# Words that carry mathematical meaning and must never be dropped as a "unit".
_NOT_UNITS = frozenset(
    {
        "pi", "sqrt", "inf", "infty", "infinity", "and", "or", "to", "mod", "pmod", "percent",
        "percentage", "pct", "none", "no", "yes", "true", "false", "undefined", "all", "real",
        "reals", "numbers", "integers", "even", "odd", "i", "e", "sin", "cos", "tan", "cot",
        "sec", "csc", "log", "ln", "exp",
    }
)
_DEGREES_TAIL = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ)\s*$")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_ENDS_WITH_OPERATOR = re.compile(r"(?:[-+*/^_=,({\[\\]|\\cdot|\\times|\\div)\s*$")
# Patterns anchored at the end are only searched in the last characters of the answer, which
# keeps them linear in the input length whatever the input is.
_TAIL_WINDOW = 160


def _search_tail(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    return pattern.search(text, max(0, len(text) - _TAIL_WINDOW))


def _strip_wrapping_delimiters(text: str) -> str:
    changed = True
    while changed:
        changed = False
        for left, right in _WRAPPING_DELIMITERS:
            if (
                len(text) >= len(left) + len(right)
                and text.startswith(left)
                and text.endswith(right)
                and "$" not in text[len(left) : len(text) - len(right)]
            ):
                text = text[len(left) : len(text) - len(right)].strip()
                changed = True
    return text


def _strip_trailing_punctuation(text: str) -> str:
    while text and text[-1] in ".,;" and not text.endswith("\\" + text[-1]):
        text = text[:-1].rstrip()
    return text


def _is_numeric_value(value: str) -> bool:
    """True for a value with digits and no variables: ``12``, ``\\frac{270}7``, ``2\\sqrt{3}``."""
    if not value or _search_tail(_ENDS_WITH_OPERATOR, value):
        return False
    bare = _LATEX_COMMAND.sub("", value)
    return any(ch.isdigit() for ch in bare) and not any(
        "a" <= ch.lower() <= "z" for ch in bare
    )


def _strip_units(text: str) -> str:
    match = _search_tail(_UNIT_TAIL, text)
    if match is None:
        return text
    words = _WORD.findall(re.sub(_TEXT_COMMAND, " ", match.group(0)))
    if not words or any(word.lower() in _NOT_UNITS for word in words):
        return text
    value = text[: match.start()].rstrip()
    return value if _is_numeric_value(value) else text


def _strip_degrees(text: str) -> str:
    match = _search_tail(_DEGREES_TAIL, text)
    if match is not None and _is_numeric_value(text[: match.start()].rstrip()):
        return text[: match.start()].rstrip()
    return text


def normalize_answer(answer: str) -> str:
    r"""Normalises an extracted answer string (see the module docstring for the rules).

    >>> normalize_answer(r"$1\,000$ dollars.")
    '1000'
    """
    text = answer.translate(_UNICODE_TABLE).strip()
    text = _strip_wrapping_delimiters(text)
    text = _strip_trailing_punctuation(text)
    text = text.replace("\\displaystyle", "")
    text = _NEGATIVE_SPACE.sub("", text)
    text = _LATEX_THOUSANDS.sub("", text)
    text = _LATEX_SPACES.sub(" ", text)
    # Escaped or not, a `$` left in an answer is currency or markup.
    text = text.replace("\\$", "").replace("$", "")
    text = _WHITESPACE.sub(" ", text).strip()
    text = _strip_degrees(text)
    text = _strip_units(text)
    text = _strip_degrees(text)
    text = _strip_trailing_punctuation(text)
    if _COMMA_NUMBER.fullmatch(text):
        text = text.replace(",", "")
    return text


_TEXT_COMMAND_GROUP = re.compile(
    r"\\(?:text|textbf|textrm|textnormal|textup|mathrm|mathbf|mbox)\s*\{([^{}]*)\}"
)
_CHOICE_ONLY = re.compile(r"\(?\s*([A-Za-z])\s*\)?")
# An option mark: "(B)", or a capital followed by ")", "." or ":" ("B) 42", "B. 42").
_CHOICE_MARK = re.compile(r"\(\s*([A-Za-z])\s*\)(?=\s|$)|(?<![A-Za-z(])([A-Z])[.):](?=\s|$)")
# Letters that could name another option further on ("B. or C", "(B) not E").
_OTHER_OPTION = re.compile(r"(?<![A-Za-z\\])([A-E])(?![A-Za-z])")


def choice_letter(answer: str, *, uppercase_only: bool = False) -> str | None:
    r"""Returns the multiple-choice letter an answer denotes, upper-cased, or ``None``.

    Recognised: ``B``, ``(B)``, ``\text{B}``, ``\text{(B)}``, ``\textbf{(B)}``, ``**B**``, and
    an option mark followed by the option's text: ``(B) 42``, ``B) 42``, ``B. 42``. Answers naming
    two options (``(B) or (C)``) name none. Lower-case letters count unless ``uppercase_only``
    (used for gold answers, where ``x`` is a variable, not a choice).
    """
    text = _TEXT_COMMAND_GROUP.sub(r"\1", answer)
    text = text.strip().strip("*$").strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = _strip_trailing_punctuation(text)
    match = _CHOICE_ONLY.fullmatch(text)
    if match is not None:
        letter = match.group(1)
    else:
        first = _CHOICE_MARK.match(text)
        if first is None:
            return None
        letter = first.group(1) or first.group(2)
        # "(B) 42" names one option; "(B) or (C)" and "B. or C" hedge and name none.
        named = {a or b for a, b in _CHOICE_MARK.findall(text)} | set(_OTHER_OPTION.findall(text))
        if {mark.upper() for mark in named} - {letter.upper()}:
            return None
    if uppercase_only and not letter.isupper():
        return None
    return letter.upper()
