"""A synthetic verifiable task: multi-digit addition, for learning tests at tiny scale.

A problem is the text ``"a+b="``; its answer is the decimal sum. The same problems feed every
post-training stage of the tiny demos, each in the record format the engine reads:

    sft_records         {"question": "37+45=", "answer": "82"}             task: sft, and RL
                                                                           prompts with gold
    preference_records  {"prompt": "37+45=", "chosen": "82", "rejected": "83"}
    corpus_text         "37+45=82\n..."                                  tokenizer / pretrain

Rejected answers are near misses (one digit changed, or off by one in the last place), so a
preference model must learn the arithmetic rather than a surface cue such as the length.
`write_jsonl` writes any of these lists to a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def addition_problems(count: int, *, digits: int = 2, seed: int = 0) -> list[tuple[int, int]]:
    """`count` pairs (a, b) with 1..`digits`-digit operands, drawn uniformly with `seed`."""
    if count < 0 or digits < 1:
        raise ValueError(f"need count >= 0 and digits >= 1, got {count}, {digits}")
    rng = np.random.default_rng(seed)
    operands = rng.integers(0, 10**digits, size=(count, 2))
    return [(int(a), int(b)) for a, b in operands]


def question(a: int, b: int) -> str:
    return f"{a}+{b}="


def sft_records(problems: Iterable[tuple[int, int]]) -> list[dict[str, str]]:
    """Question/answer pairs (also the RL prompt format: `answer` is the gold)."""
    return [{"question": question(a, b), "answer": str(a + b)} for a, b in problems]


def near_miss(answer: int, rng: np.random.Generator) -> int:
    """A wrong answer that looks right: one digit replaced, or ±1; never `answer` itself."""
    text = str(answer)
    if rng.random() < 0.5:
        position = int(rng.integers(len(text)))
        choices = [
            d
            for d in "0123456789"
            if d != text[position] and not (position == 0 and d == "0" and len(text) > 1)
        ]
        wrong = int(text[:position] + str(rng.choice(choices)) + text[position + 1 :])
    else:
        wrong = answer + (1 if answer == 0 or rng.random() < 0.5 else -1)
    assert wrong != answer
    return wrong


def preference_records(
    problems: Iterable[tuple[int, int]], *, seed: int = 0
) -> list[dict[str, str]]:
    """Pairs preferring the correct sum over a near miss."""
    rng = np.random.default_rng(seed)
    return [
        {"prompt": question(a, b), "chosen": str(a + b), "rejected": str(near_miss(a + b, rng))}
        for a, b in problems
    ]


def corpus_text(problems: Iterable[tuple[int, int]]) -> str:
    """One solved problem per line: text to train a tokenizer on or to pretrain with."""
    return "".join(f"{question(a, b)}{a + b}\n" for a, b in problems)


def write_jsonl(records: Iterable[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return path


def write_addition_dataset(
    out_dir: str | Path,
    *,
    train: int = 8000,
    test: int = 500,
    preference_pairs: int = 4000,
    digits: int = 2,
    seed: int = 0,
) -> dict[str, Path]:
    """Writes the demo's files (what `reasonrl/assets/synthetic/addition/` ships):

      corpus.txt                solved train problems, one per line (tokenizer, pretraining)
      sft_train.jsonl           train problems as question/answer records
      test.jsonl                held-out problems (eval data, RL prompts to measure on)
      preferences_train.jsonl   pairs on train problems
      preferences_test.jsonl    pairs on held-out problems

    Held-out problems are drawn from another seed and exclude every train problem.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_problems = addition_problems(train, digits=digits, seed=seed)
    seen = set(train_problems)
    test_problems = [
        p for p in addition_problems(4 * test, digits=digits, seed=seed + 1) if p not in seen
    ][:test]
    files = {"corpus": out_dir / "corpus.txt"}
    files["corpus"].write_text(corpus_text(train_problems), encoding="utf-8")
    files["sft_train"] = write_jsonl(sft_records(train_problems), out_dir / "sft_train.jsonl")
    files["test"] = write_jsonl(sft_records(test_problems), out_dir / "test.jsonl")
    files["preferences_train"] = write_jsonl(
        preference_records(train_problems[:preference_pairs], seed=seed),
        out_dir / "preferences_train.jsonl",
    )
    files["preferences_test"] = write_jsonl(
        preference_records(test_problems, seed=seed + 1), out_dir / "preferences_test.jsonl"
    )
    return files


if __name__ == "__main__":
    import sys

    for name, path in write_addition_dataset(sys.argv[1] if len(sys.argv) > 1 else ".").items():
        print(f"{name}: {path}")
