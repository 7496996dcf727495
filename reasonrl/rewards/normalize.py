r"""String-level answer normalisation applied before math-verify.

math-verify already handles most notation (``\dfrac``/``\tfrac``, ``\left( \right)``, ``\!``,
``%``, ``\text{ cm}``, ``x = 3``, intervals, sets, matrices). This module only adds what it gets
wrong or what we want decided by an explicit, documented rule:

* Unicode math (``−``, ``°``, ``π``, ``∞``, ``×``, ``·``, ``≤``, ``≥``, ``⩽``, ``⩾``, ``≠``, ``√``,
  no-break spaces).
* Math delimiters (``$...$``, ``\(...\)``, ``\[...\]``; any other ``$`` is currency or markup and
  is dropped) and a trailing sentence period (``\boxed{5.}``).
* Thousands separators. A separator only ever joins groups of exactly three digits, and:

  - the LaTeX forms ``1\,000``, ``1\;000``, ``1~000``, ``1{,}000`` and ``1,\!000`` (also
    ``11,\! 111,\! 100``) are thousands separators wherever they occur, since nothing else is
    written that way: ``\{1{,}000\}`` is the set containing 1000;
  - a plain comma or space (``10,000``, ``1,000,000``, ``1 000``, ``-1,234.5``) only when the
    number is the *whole* answer, or the whole right-hand side of ``x = 10,000``. Elsewhere a comma
    separates items, so tuples, lists, sets and intervals are never merged: ``(1,2)``, ``1,5``,
    ``(1, 000)``, ``\{1,000\}`` (the set {1, 0}), ``[1,000, 2]`` keep their commas, and groups
    of another size (``1,0000``, ``12,34``) are not thousands.
* Relations: ``\geq``, ``\geqslant``, ``\geqq``, ``>=`` become ``\ge`` (likewise ``\le``),
  ``\neq``, ``\not=``, ``!=`` become ``\ne``, and ``\gt``/``\lt`` become ``>``/``<``, so
  LaTeX and ASCII spellings compare equal (``=>`` means "implies" and is left alone).
* Matrices: ``bmatrix``, ``Bmatrix``, ``smallmatrix``, ``matrix`` and ``array`` environments become
  ``pmatrix``, and brackets around one (``\left[\begin{array}{cc}...\end{array}\right]``) are
  dropped, so every spelling of a matrix or column vector is the same matrix; entries are then
  compared as math by math-verify (``\frac12`` equals ``0.5``). ``vmatrix`` (a determinant) is
  left alone.
* Currency and units: ``\$``, ``$``, and trailing units after a plain numeric value: ``\text{...}``
  groups (``12\text{ square units}``, ``15\mbox{ cm}^2``), words separated from the value by a space
  (``5 dollars``), and known unit abbreviations even when attached (``5cm``). Units are not
  graded: ``5 cm`` equals ``5``. Words that carry math meaning (``pi``, ``percent``, ``and``...)
  are kept, and letters written against a value are variables, not units: ``3xy`` is not ``3``.
* Trailing variables: math-verify drops a final word it takes for a unit (``t``, ``h``, ``s``,
  ``ab``...), so ``2t``, ``v_0 t`` or ``2\pi r h`` would lose a factor. A final run of letters is
  therefore braced (``2{t}``), except a single letter after a space behind a plain number
  (``5 m``), which stays a unit. A lone ``d`` before a command (``d \end{pmatrix}``) is braced
  too, or latex2sympy would read it as a differential.
* Degrees. An answer that contains a trigonometric function (``\sin``, ``\cos``, ``\tan``,
  ``\cot``, ``\sec``, ``\csc``) has its numeric degrees converted to radians
  (``\sin 30^\circ`` is ``\sin(\frac{30\pi}{180})``, so it equals ``\frac12``, and
  ``\sin(90^\circ - x)`` equals ``\cos x``). Otherwise a trailing ``^\circ`` after a numeric value
  is dropped: by the MATH convention ``30^\circ`` and ``30`` are the same answer. Radians are
  *not* converted to degrees, so ``\frac{\pi}{6}`` equals neither ``30^\circ`` nor ``30`` (an
  answer asked for in degrees is wrong in radians, and equality stays transitive).

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
    "\u2266": "\\le ",
    "\u2267": "\\ge ",
    "\u2a7d": "\\le ",  # slanted less-than or equal
    "\u2a7e": "\\ge ",  # slanted greater-than or equal
    "\u2260": "\\ne ",
    "\u221a": "\\sqrt",
    "\u00a0": " ",  # no-break space
    "\u2009": " ",  # thin space
    "\u202f": " ",  # narrow no-break space
}
_UNICODE_TABLE = str.maketrans(_UNICODE_REPLACEMENTS)

_WRAPPING_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))

# A LaTeX thousands separator between digit groups, anywhere: 1\,000, 1{,}000, 11,\! 111 -> 1000.
_LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\\;|\\:|\\ |~|\{,\}|,\s*\\!\s*)(?=\d{3}(?!\d))")
# A plain-comma or plain-space grouped number, merged only as the whole answer or as the whole
# right-hand side of `x = ...`; one kind of separator throughout.
_PLAIN_GROUPED_NUMBER = re.compile(
    r"(?P<lhs>[A-Za-z](?:_\{?\w+\}?)?\s*=\s*)?"
    r"(?P<number>-?\d{1,3}(?P<separator>[, ])\d{3}(?:(?P=separator)\d{3})*(?:\.\d+)?)"
)
_NEGATIVE_SPACE = re.compile(r"\\!")
_LATEX_SPACES = re.compile(r"\\[,;:]|\\q?quad\b|(?<!\\)\\ |~")
_WHITESPACE = re.compile(r"\s+")

# Canonical spellings: relations (LaTeX variants and ASCII) and the degree command. `!=` right
# after a digit or a closing bracket is a factorial and an equals sign (`5!=120`).
_SPELLINGS = (
    (re.compile(r"\\(?:geqslant|geqq|geq|ge)(?![A-Za-z])|>="), r" \\ge "),
    (re.compile(r"\\(?:leqslant|leqq|leq|le)(?![A-Za-z])|<="), r" \\le "),
    (re.compile(r"\\(?:neq|ne)(?![A-Za-z])|\\not\s*=|(?<![\d)}\]])!="), r" \\ne "),
    (re.compile(r"(?<=[\d)}\]])!="), "! = "),
    (re.compile(r"\\gt(?![A-Za-z])"), " > "),
    (re.compile(r"\\lt(?![A-Za-z])"), " < "),
    (re.compile(r"\\(?:text)?degree(?![A-Za-z])"), r"^\\circ"),
)

_MATRIX_BEGIN = re.compile(r"\\begin\s*\{(?:array\}\s*\{[^{}]*|(?:[bB]|small)?matrix)\}")
_MATRIX_END = re.compile(r"\\end\s*\{(?:array|(?:[bB]|small)?matrix)\}")
# Brackets around a single matrix (`\left[ \begin{pmatrix} ... \end{pmatrix} \right]`); the body
# may not contain another environment, so each character is scanned at most once per matrix.
_BRACKETED_MATRIX = re.compile(
    r"(?:\\left\s*)?[(\[]\s*"
    r"(\\begin\{pmatrix\}(?:(?!\\(?:begin|end)\{).)*\\end\{pmatrix\})"
    r"\s*(?:\\right\s*)?[)\]]",
    re.DOTALL,
)

_TRIG_FUNCTION = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_NUMERIC_DEGREES = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*\^\s*(?:\{\s*\\circ\s*\}|\\circ)")

_TEXT_COMMAND = r"\\(?:text|textrm|textnormal|textit|textbf|textup|mbox|mathrm|rm|operatorname)\s*"
# Unit abbreviations that count as units even when written against the value (`5cm`); any
# other letters written that way are variables (`3xy`, `2t`).
_ATTACHED_UNITS = r"(?:cm|mm|km|kg|mg|ft|yd|mi|lbs?|oz|hrs?|mins?|secs?|in)"
# One or more unit chunks at the end: `\text{ square units}`, ` dollars`, `\mbox{ cm}^2`, `cm`.
# Each chunk is one text group, one word after a space, or one attached abbreviation, so a tail
# can be split into chunks in one way only (no backtracking blow-up).
_UNIT_CHUNK = (
    r"(?:(?:\s|\\[,;:!]|~)*" + _TEXT_COMMAND + r"\{\s*[A-Za-z][A-Za-z .\-]*\}"
    r"|(?:\s|\\[,;:!]|~)+[A-Za-z]{2,}(?![A-Za-z])\.?"
    r"|(?<![\\A-Za-z])" + _ATTACHED_UNITS + r"(?![A-Za-z]))"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?"
)
_UNIT_TAIL = re.compile(r"(?:" + _UNIT_CHUNK + r")+\s*$")
_WORD = re.compile(r"[A-Za-z]+")
# Words that carry mathematical meaning and must never be dropped as a "unit".
_NOT_UNITS = frozenset(
    {
        "pi",
        "sqrt",
        "inf",
        "infty",
        "infinity",
        "and",
        "or",
        "to",
        "mod",
        "pmod",
        "percent",
        "percentage",
        "pct",
        "none",
        "no",
        "yes",
        "true",
        "false",
        "undefined",
        "all",
        "real",
        "reals",
        "numbers",
        "integers",
        "even",
        "odd",
        "i",
        "e",
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "log",
        "ln",
        "exp",
    }
)
_DEGREES_TAIL = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ)\s*$")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_ENDS_WITH_OPERATOR = re.compile(r"(?:[-+*/^_=,({\[\\]|\\cdot|\\times|\\div)\s*$")
# The final run of letters, when it is not a command name (`\pi`) or a sub/superscript (`x_n`).
_TRAILING_LETTERS = re.compile(r"(?<![A-Za-z\\_^])[A-Za-z]+$")
# Something that makes the text before the final letters math rather than prose.
_MATH_CONTEXT = re.compile(r"[\d\\_^+\-*/=(){}\[\]]")
# latex2sympy reads a lone `d` before a command as a differential (`d \end`, `d \cdot`).
_LONE_D = re.compile(r"(?<![A-Za-z\\])d(?=\s*\\[A-Za-z])")
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


def _canonical_spellings(text: str) -> str:
    for pattern, replacement in _SPELLINGS:
        text = pattern.sub(replacement, text)
    return text


def _canonical_matrices(text: str) -> str:
    """Every matrix environment becomes a ``pmatrix`` without surrounding brackets."""
    if "\\begin" not in text:
        return text
    text = _MATRIX_BEGIN.sub(r"\\begin{pmatrix}", text)
    text = _MATRIX_END.sub(r"\\end{pmatrix}", text)
    return _BRACKETED_MATRIX.sub(r"\1", text)


def _trig_degrees_to_radians(text: str) -> str:
    r"""``\sin 30^\circ`` -> ``\sin (\frac{30\pi}{180})``, in answers with a trig function only."""
    if _TRIG_FUNCTION.search(text) is None:
        return text
    return _NUMERIC_DEGREES.sub(r"(\\frac{\1\\pi}{180})", text)


def _is_numeric_value(value: str) -> bool:
    """True for a value with digits and no variables: ``12``, ``\\frac{270}7``, ``2\\sqrt{3}``."""
    if not value or _search_tail(_ENDS_WITH_OPERATOR, value):
        return False
    bare = _LATEX_COMMAND.sub("", value)
    return any(ch.isdigit() for ch in bare) and not any("a" <= ch.lower() <= "z" for ch in bare)


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


def _merge_plain_thousands(text: str) -> str:
    match = _PLAIN_GROUPED_NUMBER.fullmatch(text)
    if match is None:
        return text
    return (match.group("lhs") or "") + match.group("number").replace(match.group("separator"), "")


def _brace_trailing_letters(text: str) -> str:
    """``2t`` -> ``2{t}``: keeps math-verify's unit list from dropping a final variable."""
    match = _search_tail(_TRAILING_LETTERS, text)
    if match is None or match.group().lower() in _NOT_UNITS:
        return text
    before = text[: match.start()]
    if not _MATH_CONTEXT.search(before):
        return text  # a word answer, or words only: prose, not a product of variables
    if len(match.group()) == 1 and before[-1].isspace() and _is_numeric_value(before.rstrip()):
        return text  # `5 m`: a unit, which math-verify drops
    return before + "{" + match.group() + "}"


def normalize_answer(answer: str) -> str:
    r"""Normalises an extracted answer string (see the module docstring for the rules).

    >>> normalize_answer(r"$1\,000$ dollars.")
    '1000'
    """
    text = answer.translate(_UNICODE_TABLE).strip()
    text = _strip_wrapping_delimiters(text)
    text = _strip_trailing_punctuation(text)
    text = text.replace("\\displaystyle", "")
    text = _LATEX_THOUSANDS.sub("", text)
    text = _NEGATIVE_SPACE.sub("", text)
    text = _LATEX_SPACES.sub(" ", text)
    # Escaped or not, a `$` left in an answer is currency or markup.
    text = text.replace("\\$", "").replace("$", "")
    text = _canonical_spellings(text)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _canonical_matrices(text)
    text = _trig_degrees_to_radians(text)
    text = _strip_degrees(text)
    text = _strip_units(text)
    text = _strip_degrees(text)
    text = _strip_trailing_punctuation(text)
    text = _merge_plain_thousands(text)
    text = _LONE_D.sub("{d}", text)
    return _brace_trailing_letters(text)


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
