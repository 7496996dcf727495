"""A small Spectrum-Suite-like suite whose true output distributions are known exactly.

Spectrum tuning (Sorensen et al. 2025) trains on many exchangeable samples of a task's output
distribution; its evals ask whether a model produces the distribution a description states,
covers its support, and is steered by in-context samples. The real Spectrum Suite is not
available offline, so this generator writes tasks where every quantity is exact. Six families:

    categorical   "Name an item: apple 50%, pear 30%, plum 20%."           stated probabilities
    uniform       "Pick a word at random from: red, blue, green."           uniform over a list
    number        "Give a random number from 4 to 8."                       uniform integers
    individual    "Which one does this person choose? tea, milk, soda."     one individual: the
                  favourite with probability 0.7, the others share the rest; without samples
                  (no individual known) the answer is uniform over the options
    other         "From: cat, dog, bird. Name one that differs from the input."   conditional:
                  input one option, output uniform over the others
    pair          "A pair, each at random: apple or pear; red or blue."     outputs with two
                  fields, written as JSON: {"left": "apple", "right": "red"}

Every task draws its words from one category (fruits, colours, animals, ...: 8 words each).
Held-out tasks are drawn first; a training task whose word set (or number range) equals a
held-out task's is drawn again, so every held-out task asks for a set of outputs no training
task used together, with its own probabilities: doing well on it takes reading the description
(or the in-context samples), not recalling a training task. Files
(`write_spectrum_suite(directory)`, or `python -m reasonrl.synthetic.spectrum_suite DIR`):

    train.jsonl      spectrum records {id, family, description, samples: [{input?, output}]}
    sft_train.jsonl  the instruction-tuning baseline's data: one prompt per training task and
                     ONE answer, its most likely output (ties: the first listed; an
                     individual: their favourite), as {messages: [user: description,
                     (user: input), assistant: answer]}
    heldout.jsonl    held-out tasks: a spectrum record plus `queries`, each {input?,
                     candidates, probs}: the exact output distribution given the description
                     (and the input), for the coverage and distributional-alignment evals
    pretrain.txt     "world knowledge" text for a base model: which word is in which category,
                     counting; no task format, no probabilities
    tokenizer.txt    every text above, for training the recipe's tokenizer

Everything is drawn from `numpy.random.default_rng(seed)`; the shipped files (in
`reasonrl/assets/synthetic/spectrum/`) were written with the defaults of `SuiteSettings`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

CATEGORIES = {
    "fruit": ["apple", "pear", "plum", "grape", "lemon", "mango", "peach", "cherry"],
    "color": ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"],
    "animal": ["cat", "dog", "horse", "mouse", "bird", "fish", "sheep", "goat"],
    "drink": ["tea", "coffee", "milk", "juice", "water", "soda", "cocoa", "wine"],
    "city": ["paris", "rome", "tokyo", "cairo", "lima", "oslo", "delhi", "seoul"],
    "sport": ["soccer", "tennis", "golf", "rugby", "hockey", "boxing", "rowing", "skiing"],
    "metal": ["iron", "gold", "silver", "copper", "tin", "zinc", "lead", "nickel"],
    "tool": ["hammer", "saw", "drill", "wrench", "pliers", "chisel", "file", "axe"],
}
NUMBER_STARTS = range(0, 25)
FAVOURITE_PROBABILITY = 0.7
FAMILIES = ("categorical", "uniform", "number", "individual", "other", "pair")


@dataclasses.dataclass(frozen=True)
class SuiteSettings:
    """What the generator draws; the shipped files use the defaults."""

    seed: int = 0
    train_tasks: int = 3000
    heldout_tasks_per_family: int = 8
    samples_per_task: tuple[int, int] = (8, 14)  # inclusive range
    heldout_samples: int = 12


@dataclasses.dataclass(frozen=True)
class Query:
    """One exact output distribution: given the description and `input`, P(candidates[i]) =
    probs[i]; any other output has probability 0."""

    candidates: tuple[str, ...]
    probs: tuple[float, ...]
    input: str | None = None

    def as_json(self) -> dict:
        extra = {} if self.input is None else {"input": self.input}
        return {**extra, "candidates": list(self.candidates), "probs": list(self.probs)}


@dataclasses.dataclass(frozen=True)
class Task:
    """A task: its description, how to draw one sample (input, output), and its queries."""

    family: str
    description: str
    draw: Callable[[np.random.Generator], tuple[str | None, str]]
    queries: tuple[Query, ...]
    answer: str | None = None  # the one answer of the baseline's data; None: the first mode


def _pick(rng: np.random.Generator, words: list[str], count: int) -> list[str]:
    return [words[i] for i in rng.choice(len(words), size=count, replace=False)]


def _percentages(rng: np.random.Generator, count: int) -> list[int]:
    """`count` multiples of 10 that are each >= 10 and sum to 100, in decreasing order."""
    cuts = np.sort(rng.choice(np.arange(1, 10), size=count - 1, replace=False))
    parts = np.diff(np.concatenate([[0], cuts, [10]])) * 10
    return sorted(parts.tolist(), reverse=True)


def _categorical_draw(outputs: list[str], probs: list[float]):
    return lambda rng: (None, outputs[rng.choice(len(outputs), p=probs)])


def _category(rng: np.random.Generator) -> str:
    return sorted(CATEGORIES)[int(rng.integers(len(CATEGORIES)))]


def categorical_task(rng) -> Task:
    category = _category(rng)
    count = int(rng.integers(2, 5))
    words = _pick(rng, CATEGORIES[category], count)
    percents = _percentages(rng, count)
    stated = ", ".join(f"{w} {p}%" for w, p in zip(words, percents))
    probs = [p / 100 for p in percents]
    return Task(
        "categorical",
        f"Name a {category}: {stated}.",
        _categorical_draw(words, probs),
        (Query(tuple(words), tuple(probs)),),
    )


def uniform_task(rng) -> Task:
    category = _category(rng)
    words = _pick(rng, CATEGORIES[category], int(rng.integers(2, 6)))
    probs = [1 / len(words)] * len(words)
    return Task(
        "uniform",
        f"Pick a {category} at random from: {', '.join(words)}.",
        _categorical_draw(words, probs),
        (Query(tuple(words), tuple(probs)),),
    )


def number_task(rng) -> Task:
    low = int(rng.choice(NUMBER_STARTS))
    high = low + int(rng.integers(2, 7))
    numbers = [str(n) for n in range(low, high + 1)]
    probs = [1 / len(numbers)] * len(numbers)
    return Task(
        "number",
        f"Give a random number from {low} to {high}.",
        _categorical_draw(numbers, probs),
        (Query(tuple(numbers), tuple(probs)),),
    )


def individual_task(rng) -> Task:
    category = _category(rng)
    words = _pick(rng, CATEGORIES[category], int(rng.integers(3, 6)))
    favourite = int(rng.integers(len(words)))
    rest = (1 - FAVOURITE_PROBABILITY) / (len(words) - 1)
    probs = [FAVOURITE_PROBABILITY if i == favourite else rest for i in range(len(words))]
    uniform = [1 / len(words)] * len(words)
    return Task(
        "individual",
        f"Which {category} does this person choose? {', '.join(words)}.",
        _categorical_draw(words, probs),
        # Knowing only the description, the individual is unknown: uniform over the options.
        (Query(tuple(words), tuple(uniform)),),
        answer=words[favourite],
    )


def other_task(rng) -> Task:
    category = _category(rng)
    words = _pick(rng, CATEGORIES[category], int(rng.integers(3, 6)))

    def draw(rng):
        given = int(rng.integers(len(words)))
        others = [w for i, w in enumerate(words) if i != given]
        return words[given], others[int(rng.integers(len(others)))]

    given = words[int(rng.integers(len(words)))]
    others = tuple(w for w in words if w != given)
    return Task(
        "other",
        f"From: {', '.join(words)}. Name a {category} that differs from the input.",
        draw,
        (Query(others, tuple([1 / len(others)] * len(others)), input=given),),
    )


def pair_task(rng) -> Task:
    first, second = (str(c) for c in rng.choice(sorted(CATEGORIES), size=2, replace=False))
    first_words = _pick(rng, CATEGORIES[first], 2)
    second_words = _pick(rng, CATEGORIES[second], int(rng.integers(2, 4)))
    outputs = [
        json.dumps({first: a, second: b}) for a, b in itertools.product(first_words, second_words)
    ]
    probs = [1 / len(outputs)] * len(outputs)
    return Task(
        "pair",
        f"A {first} and a {second}, each at random: "
        f"{' or '.join(first_words)}; {' or '.join(second_words)}.",
        _categorical_draw(outputs, probs),
        (Query(tuple(outputs), tuple(probs)),),
    )


MAKERS = {
    "categorical": categorical_task,
    "uniform": uniform_task,
    "number": number_task,
    "individual": individual_task,
    "other": other_task,
    "pair": pair_task,
}


def signature(task: Task) -> tuple:
    """What makes two tasks ask for the same outputs, whatever their family and probabilities:
    the set of outputs of the first query, and its input."""
    query = task.queries[0]
    return (frozenset(query.candidates), query.input)


def draw_samples(task: Task, rng: np.random.Generator, count: int) -> list[dict]:
    samples = []
    for _ in range(count):
        given, output = task.draw(rng)
        samples.append({"output": output} if given is None else {"input": given, "output": output})
    return samples


def _mode(query: Query) -> str:
    return query.candidates[int(np.argmax(query.probs))]


def sft_record(task: Task, task_id: str) -> dict:
    """The instruction-tuning baseline's one (prompt, answer) for a task: the description (and
    the first query's input) and the most likely output (for an individual: their favourite)."""
    query = task.queries[0]
    messages = [{"role": "user", "content": task.description}]
    if query.input is not None:
        messages.append({"role": "user", "content": query.input})
    answer = task.answer if task.answer is not None else _mode(query)
    messages.append({"role": "assistant", "content": answer})
    return {"id": task_id, "messages": messages}


def pretrain_text(rng: np.random.Generator, documents: int = 4000) -> str:
    """Documents that say which word belongs to which category, and count: world knowledge
    about every word and number the suite uses, in none of its task formats."""
    names = sorted(CATEGORIES)
    lines = []
    for _ in range(documents):
        kind = int(rng.integers(3))
        category = names[int(rng.integers(len(names)))]
        words = CATEGORIES[category]
        if kind == 0:
            chosen = _pick(rng, words, int(rng.integers(2, 6)))
            lines.append(f"Some kinds of {category}: {', '.join(chosen)}.")
        elif kind == 1:
            word = words[int(rng.integers(len(words)))]
            lines.append(f"The word {word} names a {category}.")
        else:
            low = int(rng.integers(0, 30))
            lines.append("Counting: " + " ".join(str(n) for n in range(low, low + 8)) + ".")
    return "\n\n".join(lines) + "\n"


def generate_suite(settings: SuiteSettings = SuiteSettings()) -> dict:
    """{"train", "sft_train", "heldout": records, "pretrain": text}."""
    rng = np.random.default_rng(settings.seed)
    heldout, taken = [], set()
    for family in FAMILIES:
        for index in range(settings.heldout_tasks_per_family):
            task = MAKERS[family](rng)
            while signature(task) in taken:
                task = MAKERS[family](rng)
            taken.add(signature(task))
            heldout.append(
                {
                    "id": f"heldout-{family}-{index:02d}",
                    "family": family,
                    "description": task.description,
                    "samples": draw_samples(task, rng, settings.heldout_samples),
                    "queries": [query.as_json() for query in task.queries],
                }
            )
    low, high = settings.samples_per_task
    train, sft = [], []
    for index in range(settings.train_tasks):
        family = FAMILIES[index % len(FAMILIES)]
        task = MAKERS[family](rng)
        while signature(task) in taken:  # never a held-out task's outputs
            task = MAKERS[family](rng)
        task_id = f"train-{index:05d}"
        count = int(rng.integers(low, high + 1))
        train.append(
            {
                "id": task_id,
                "family": family,
                "description": task.description,
                "samples": draw_samples(task, rng, count),
            }
        )
        sft.append(sft_record(task, task_id))
    return {"train": train, "sft_train": sft, "heldout": heldout, "pretrain": pretrain_text(rng)}


def tokenizer_text(suite: dict) -> str:
    """Every word and every task text of the suite (descriptions, inputs, outputs)."""
    lines = [suite["pretrain"]]
    for record in suite["train"] + suite["heldout"]:
        lines.append(record["description"])
        lines.extend(s.get("input", "") + "\n" + s["output"] for s in record["samples"][:4])
    return "\n".join(lines) + "\n"


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def write_spectrum_suite(directory: str | Path, settings: SuiteSettings = SuiteSettings()) -> None:
    """Writes the suite's files (module docstring) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suite = generate_suite(settings)
    for name in ("train", "sft_train", "heldout"):
        (directory / f"{name}.jsonl").write_text(_jsonl(suite[name]), encoding="utf-8")
    (directory / "pretrain.txt").write_text(suite["pretrain"], encoding="utf-8")
    (directory / "tokenizer.txt").write_text(tokenizer_text(suite), encoding="utf-8")


if __name__ == "__main__":
    write_spectrum_suite(sys.argv[1] if len(sys.argv) > 1 else ".")
