r"""Cheap pre-checks that keep pathological answers away from sympy.

:func:`screen_answer` runs in the parent process before any worker is involved. It rejects:

* answers longer than :data:`MAX_ANSWER_CHARS` (real final answers are short; MATH-500's longest
  reference answer is 53 characters);
* bracket nesting deeper than :data:`MAX_NESTING_DEPTH` (deep nesting makes parsers recurse);
* numbers too large to build exactly: power towers such as ``10^{10^{10^{10}}}``,
  ``9^{9^{9^9}}`` or ``2**2**2**2**2**2``, huge exponents (``3^{10^{9}}``, ``10^{-10^{9}}``) and
  factorials of huge numbers (``(10^{10})!``), estimated from their literals.

The size estimate works on a token tree built from the answer (numbers, ``^``/``**``, ``!``,
``+ - * \cdot \times``, ``\frac``, ``\sqrt`` and bracket groups) and bounds ``log10`` of every
numeric subexpression's numerator or denominator; anything above :data:`MAX_RESULT_DIGITS`
digits is rejected. Symbols make an expression non-numeric, so ``x^{100}`` or ``2^{2^n}`` pass.
The screen is a fast first line of defence only: the hard time limit of the worker pool is what
guarantees termination.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_NESTING_DEPTH",
    "MAX_RESULT_DIGITS",
    "estimate_max_digits",
    "nesting_depth",
    "screen_answer",
]

MAX_ANSWER_CHARS = 1000
MAX_NESTING_DEPTH = 40
MAX_RESULT_DIGITS = 100_000

_TOKEN = re.compile(
    r"(?P<num>\d+(?:\.\d*)?|\.\d+)"
    r"|(?P<pow>\*\*|\^)"
    r"|(?P<open>\\left\s*[({\[]|[({\[])"
    r"|(?P<close>\\right\s*[)}\]]|[)}\]])"
    r"|(?P<op>[-+*]|\\cdot(?![A-Za-z])|\\times(?![A-Za-z]))"
    r"|(?P<fact>!)"
    r"|(?P<frac>\\[dtc]?frac(?![A-Za-z]))"
    r"|(?P<sqrt>\\sqrt(?![A-Za-z]))"
    r"|(?P<space>\s+|\\[,;:! ]|\\left\.|\\right\.)"
    r"|(?P<other>\\[A-Za-z]+|\\.|.)",
    re.DOTALL,
)
_LOG10_2 = math.log10(2)


def nesting_depth(text: str) -> int:
    """Maximum depth of ``{ ( [`` nesting (escaped braces ignored)."""
    depth = best = 0
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "{([":
            depth += 1
            best = max(best, depth)
        elif ch in "})]":
            depth = max(0, depth - 1)
    return best


class _TooLarge(Exception):
    def __init__(self, digits: float):
        super().__init__(digits)
        self.digits = digits


def _tokenize(text: str) -> list:
    """Token tree: numbers -> float sizes, groups -> nested lists, everything else -> str kinds."""
    root: list = []
    stack = [root]
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "open":
            group: list = []
            stack[-1].append(group)
            stack.append(group)
        elif kind == "close":
            if len(stack) > 1:
                stack.pop()
            else:
                stack[-1].append("other")
        elif kind == "num":
            stack[-1].append(_number_size(match.group()))
        else:
            stack[-1].append(kind)
    return root


def _number_size(literal: str) -> float:
    """Upper bound of |log10(x)| for a decimal literal x (0 for 0 and 1)."""
    integer, _, fraction = literal.partition(".")
    integer = integer.lstrip("0")
    if len(integer) > 300:
        return float(len(integer))
    value = float(literal)
    if value == 0.0:
        return 0.0
    return max(abs(math.log10(value)), float(len(fraction.rstrip("0"))))


def _pow_size(base_size: float, exponent_size: float) -> float:
    """Size of b**e given the sizes of b and e (|e| <= 10**size(e))."""
    if base_size == 0.0:
        return 0.0
    if exponent_size > 300:
        return math.inf
    return base_size * 10.0**exponent_size


def _factorial_size(size: float) -> float:
    if size > 15:
        return math.inf
    n = 10.0**size
    return n * max(1.0, math.log10(n))


def _check(size: float | None) -> float | None:
    if size is not None and size > MAX_RESULT_DIGITS:
        raise _TooLarge(size)
    return size


def _atom_size(atom) -> float | None:
    if isinstance(atom, float):
        return atom
    if isinstance(atom, list):
        return _sequence_size(atom)
    return None


def _fold_fractions_and_roots(items: list) -> list:
    """Replaces ``\\frac A B`` and ``\\sqrt A`` by one atom whose size bounds the result."""
    folded: list = []
    i = 0
    n = len(items)
    while i < n:
        item = items[i]
        is_atom = [isinstance(x, (float, list)) for x in items[i + 1 : i + 3]]
        if item == "frac" and is_atom == [True, True]:
            sizes = [_atom_size(items[i + 1]), _atom_size(items[i + 2])]
            folded.append("other" if None in sizes else _check(sizes[0] + sizes[1]))
            i += 3
        elif item == "sqrt" and is_atom[:1] == [True]:
            size = _atom_size(items[i + 1])
            folded.append("other" if size is None else size)
            i += 2
        else:
            folded.append(item)
            i += 1
    return folded


def _sequence_size(items: list) -> float | None:
    """Size bound for a token sequence, or None if it is not purely numeric.

    Sub-groups and power chains are always checked (raising ``_TooLarge``), numeric or not.
    """
    items = _fold_fractions_and_roots(items)
    total = 0.0
    numeric = True
    i = 0
    n = len(items)
    while i < n:
        item = items[i]
        if item == "op":
            total += _LOG10_2
            i += 1
            continue
        if not isinstance(item, (float, list)):
            numeric = False
            i += 1
            continue
        chain = [_atom_size(item)]
        while i + 2 < n and items[i + 1] == "pow" and isinstance(items[i + 2], (float, list)):
            chain.append(_atom_size(items[i + 2]))
            i += 2
        size = chain[-1]
        for base_size in reversed(chain[:-1]):  # right-associative: a^(b^c)
            size = None if size is None or base_size is None else _check(_pow_size(base_size, size))
        while i + 1 < n and items[i + 1] == "fact":
            size = None if size is None else _check(_factorial_size(size))
            i += 1
        if size is None:
            numeric = False
        else:
            total = _check(total + size)
        i += 1
    return total if numeric else None


def estimate_max_digits(text: str) -> float:
    """Upper bound on the digits of the largest numeric subexpression (``inf`` when unbounded).

    Only meaningful below :data:`MAX_RESULT_DIGITS`: the estimate stops at the first
    subexpression above that limit and returns its size.
    """
    if nesting_depth(text) > MAX_NESTING_DEPTH:
        return math.inf  # too deep to estimate safely (the recursion follows the nesting)
    try:
        size = _sequence_size(_tokenize(text))
    except _TooLarge as too_large:
        return too_large.digits
    return 0.0 if size is None else size


def screen_answer(answer: str, *, max_chars: int = MAX_ANSWER_CHARS) -> str | None:
    """Returns why ``answer`` must not be handed to sympy, or ``None`` if it may be."""
    if len(answer) > max_chars:
        return f"answer longer than {max_chars} characters ({len(answer)})"
    depth = nesting_depth(answer)
    if depth > MAX_NESTING_DEPTH:
        return f"brackets nested {depth} deep (limit {MAX_NESTING_DEPTH})"
    digits = estimate_max_digits(answer)
    if digits > MAX_RESULT_DIGITS:
        shown = "unbounded" if math.isinf(digits) else f"~{digits:.3g}"
        return f"number too large to evaluate ({shown} digits, limit {MAX_RESULT_DIGITS})"
    return None
