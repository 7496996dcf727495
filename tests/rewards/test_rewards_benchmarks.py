"""Vendored benchmark data and the MATH-500 grader self-test."""

import hashlib
from importlib import resources

import pytest

from reasonrl.rewards import (
    BENCHMARK_NAMES,
    extract_answer,
    get_default_pool,
    grade_batch,
    load_benchmark,
    normalize_answer,
)

EXPECTED = {
    # name: (records, sha256 of the vendored file)
    "math500": (500, "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132"),
    "aime24": (30, "b7ce48669ce2aed195b79897b7fc5321eacba6d3c29e2f28ed5ff6a404bd1975"),
    "aime25": (30, "1d13fe301c386c9795e5a1de2f4e77ba2a72bc797e1a57151659b1eb0e978abb"),
    "amc23": (40, "fc85b2dfbb035ddd13cb2bb9656a1fc33c3bf3b76c1bed4cb206b398d42ac4cf"),
}


@pytest.mark.parametrize("name", BENCHMARK_NAMES)
def test_vendored_files_are_the_documented_bytes(name):
    records, sha256 = EXPECTED[name]
    path = resources.files("reasonrl") / "assets" / "benchmarks" / name / "test.jsonl"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    problems = load_benchmark(name)
    assert len(problems) == records
    assert len({p.id for p in problems}) == records
    assert all(p.problem.strip() and p.answer.strip() for p in problems)


def test_math500_fields():
    problems = load_benchmark("math500")
    assert problems[0].id == "test/precalculus/807.json"
    assert problems[0].answer == r"\left( 3, \frac{\pi}{2} \right)"
    assert {p.level for p in problems} == {1, 2, 3, 4, 5}
    assert len({p.subject for p in problems}) == 7
    assert all(r"\boxed" in p.solution for p in problems)


def test_competition_answers_are_integers():
    for name, low, high in (("aime24", 0, 999), ("aime25", 0, 999), ("amc23", -1, 10_000)):
        problems = load_benchmark(name)
        assert all(low <= int(p.answer) <= high for p in problems), name
        assert all(p.subject is None and p.solution is None for p in problems)
    aime25 = [p.answer for p in load_benchmark("aime25")]
    assert aime25[:3] == ["70", "588", "16"] and aime25[-1] == "240"
    assert load_benchmark("aime24")[0].id == "2024-I-1"
    assert load_benchmark("amc23")[0].id == "2023-12A-1"


def test_unknown_benchmark():
    with pytest.raises(ValueError, match="math500"):
        load_benchmark("gsm8k")


def test_math500_reference_solutions_grade_correct():
    """Self-test: every reference solution, graded against its own answer, should pass."""
    problems = load_benchmark("math500")
    results = grade_batch([p.solution for p in problems], [p.answer for p in problems])
    misses = [(p.id, p.answer, r) for p, r in zip(problems, results) if not r.correct]
    assert len(problems) - len(misses) >= 0.99 * len(problems), misses


def _math_verify_path_misses(problems):
    pairs = [
        (normalize_answer(extract_answer(p.solution)), normalize_answer(p.answer)) for p in problems
    ]
    replies = get_default_pool().verify_many(pairs, timeout_s=10)
    return [(p.id, pair, r) for p, pair, r in zip(problems, pairs, replies) if not r.equivalent]


def _shifted_matches(problems):
    shifted = [problems[(i + 1) % len(problems)].answer for i in range(len(problems))]
    results = grade_batch([p.solution for p in problems], shifted)
    return sum(r.correct for r in results)


def test_math_verify_path_agrees_on_math500_sample():
    """The self-test pairs through math-verify in the workers, skipping the string shortcut
    (every 5th problem here; all 500 in the slow test below)."""
    assert _math_verify_path_misses(load_benchmark("math500")[::5]) == []


def test_math500_sample_solutions_do_not_match_other_answers():
    """Negative control: solution i against answer i+1 must be wrong, except for answers that
    coincide (several problems share answers such as 3)."""
    assert _shifted_matches(load_benchmark("math500")[::5]) <= 2


@pytest.mark.slow
def test_math_verify_path_agrees_on_all_of_math500():
    assert _math_verify_path_misses(load_benchmark("math500")) == []


@pytest.mark.slow
def test_math500_solutions_do_not_match_other_answers():
    assert _shifted_matches(load_benchmark("math500")) <= 10
