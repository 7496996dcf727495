"""A synthetic text where a thought helps predict the next token: digit sums.

A document is `num_digits` random digits in [0, base), "=", and their sum modulo `base`
(default: ten digits, base 3):

    plain               "2110201002=0"

Predicting the answer without thinking means summing ten digits in one forward pass (a
parity-like function), which a tiny transformer does not learn in a few minutes: its answer NLL
stays near log 3. With a scratchpad it is one easy step per digit: the running sums mod 3,
whose last value is the answer. So the pretraining text also holds documents with a thought
after "=", in one of two styles:

    computing thought   "2110201002=<think>+2011001110</think>0"   "+", then the running
                                                                   sums: the answer is the
                                                                   thought's last digit
    restating thought   "2110201002=<think>2110201002</think>0"    the question again: says
                                                                   nothing about the answer

Most thoughts in the pretraining text restate (`running_sum_fraction` of them compute), so a
model pretrained on it knows the thought format, can write both kinds, and mostly writes the
useless kind: at the answer position its thoughts carry little information at first. The
choice between the kinds is the thought's first token ("+" or a digit). RLP's reward (the
information gain of a thought about the observed next token) is high only for thoughts that
compute, so RLP on plain held-out documents, which have no thoughts and no verifier, should
shift the policy towards running sums and raise the information gain. Base 3 keeps each step a
9-entry addition table that a tiny model learns in minutes (base 10's 100 entries it does not).

`write_digit_sums_dataset(directory)` writes the files the `configs/rlp.py` recipe reads
(`python -m reasonrl.synthetic.digit_sums DIR`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

THOUGHT_OPEN, THOUGHT_CLOSE = "<think>", "</think>"


def digit_problems(count: int, *, num_digits: int, base: int, seed: int) -> np.ndarray:
    """int [count, num_digits] uniform random digits in [0, base) (rows may repeat)."""
    if count < 0 or num_digits < 1 or not 2 <= base <= 10:
        raise ValueError(
            f"need count >= 0, num_digits >= 1, 2 <= base <= 10: {count, num_digits, base}"
        )
    return np.random.default_rng(seed).integers(0, base, size=(count, num_digits))


def running_sums(digits: np.ndarray, base: int) -> np.ndarray:
    """[..., n] digits -> [..., n] running sums mod `base` (the last one is the answer)."""
    return np.cumsum(digits, axis=-1) % base


def _text(digits) -> str:
    return "".join(str(int(d)) for d in digits)


def answer(digits, base: int) -> int:
    return int(np.sum(digits)) % base


def plain_document(digits, base: int) -> str:
    """ "2110201002=0": the question and its answer, no thought."""
    return f"{_text(digits)}={answer(digits, base)}"


def thought_document(digits, base: int, *, computes: bool) -> str:
    """The question, a thought ("+" and the running sums if `computes`, else the question
    restated), then the answer."""
    thought = "+" + _text(running_sums(np.asarray(digits), base)) if computes else _text(digits)
    return f"{_text(digits)}={THOUGHT_OPEN}{thought}{THOUGHT_CLOSE}{answer(digits, base)}"


def pretraining_documents(
    digits: np.ndarray,
    base: int,
    *,
    thought_fraction: float,
    running_sum_fraction: float,
    seed: int,
) -> list[str]:
    """One document per row of `digits`: with probability `thought_fraction` it has a thought,
    which computes (running sums) with probability `running_sum_fraction`, else restates."""
    rng = np.random.default_rng(seed)
    has_thought = rng.random(len(digits)) < thought_fraction
    computes = rng.random(len(digits)) < running_sum_fraction
    return [
        thought_document(row, base, computes=bool(c)) if t else plain_document(row, base)
        for row, t, c in zip(digits, has_thought, computes)
    ]


def write_digit_sums_dataset(
    directory: str | Path,
    *,
    num_digits: int = 10,
    base: int = 3,
    pretrain_count: int = 30_000,
    midtrain_count: int = 10_000,
    rlp_count: int = 10_000,
    test_count: int = 500,
    pretrain_thoughts: tuple[float, float] = (0.5, 0.5),
    midtrain_thoughts: tuple[float, float] = (0.1, 0.05),
    seed: int = 0,
) -> dict[str, Path]:
    """Writes the recipe's files (documents one per line; the four sets of problems are
    disjoint). `*_thoughts` = (thought_fraction, running_sum_fraction), see
    `pretraining_documents`.

    pretrain.txt     `pretrain_count` documents, half with a thought, half of those computing:
                     the text that teaches the format and the running sums (and the
                     tokenizer's corpus)
    midtrain.txt     `midtrain_count` documents, a tenth with a thought, 5% of those
                     computing: continued pretraining on it leaves a model that can compute in
                     a thought but rarely chooses to
    rlp.txt          `rlp_count` plain documents: the RLP stage's (and the next-token
                     baseline's) training text
    test.txt         `test_count` plain held-out documents
    test.jsonl       the same as {"question": "2110201002=", "answer": "0"} records
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    counts = [pretrain_count, midtrain_count, rlp_count, test_count]
    total = sum(counts)
    # Draw extra rows and keep the first occurrence of each problem, so the sets are disjoint.
    pool = digit_problems(3 * total, num_digits=num_digits, base=base, seed=seed)
    _, first = np.unique(pool, axis=0, return_index=True)
    pool = pool[np.sort(first)]
    if len(pool) < total:
        raise ValueError(
            f"{num_digits} digits in base {base} gave {len(pool)} distinct problems in "
            f"{3 * total} draws; {total} requested"
        )
    pretrain, midtrain, rlp, test = np.split(pool[:total], np.cumsum(counts)[:-1])
    files = {name: directory / f"{name}.txt" for name in ("pretrain", "midtrain", "rlp", "test")}
    files["test_jsonl"] = directory / "test.jsonl"
    for name, problems, (thought_fraction, running_sum_fraction), offset in (
        ("pretrain", pretrain, pretrain_thoughts, 1),
        ("midtrain", midtrain, midtrain_thoughts, 2),
    ):
        documents = pretraining_documents(
            problems,
            base,
            thought_fraction=thought_fraction,
            running_sum_fraction=running_sum_fraction,
            seed=seed + offset,
        )
        files[name].write_text("".join(f"{d}\n" for d in documents))
    files["rlp"].write_text("".join(f"{plain_document(row, base)}\n" for row in rlp))
    files["test"].write_text("".join(f"{plain_document(row, base)}\n" for row in test))
    files["test_jsonl"].write_text(
        "".join(
            json.dumps({"question": f"{_text(row)}=", "answer": str(answer(row, base))}) + "\n"
            for row in test
        )
    )
    return files


if __name__ == "__main__":
    for name, path in write_digit_sums_dataset(sys.argv[1]).items():
        print(f"{name}: {path}")
