"""distinct-n (Li et al., 2016): the share of a set of texts' n-grams that are distinct.

Words are the lower-cased text split on whitespace; n-grams never cross from one text to the
next. distinct_n = |distinct n-grams| / |n-grams| over all the texts of one prompt; NaN when
they hold no n-gram (the eval's mean skips such prompts).
"""

from __future__ import annotations

from collections.abc import Sequence


def text_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """The n-grams of one text's lower-cased whitespace words, in order."""
    words = text.lower().split()
    return list(zip(*(words[i:] for i in range(n))))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """|distinct n-grams| / |n-grams| over ``texts``; NaN when there is no n-gram."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [gram for text in texts for gram in text_ngrams(text, n)]
    return len(set(grams)) / len(grams) if grams else float("nan")
