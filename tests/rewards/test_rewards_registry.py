"""Tests for the reward registry and the registered rewards."""

import pytest

from reasonrl.rewards import (
    REWARDS,
    compute_rewards,
    format_reward,
    get_reward,
    grade,
    math_correctness_reward,
    register_reward,
)


def test_builtin_rewards_are_registered():
    assert {"math_correctness", "math_correctness_strict", "format"} <= set(REWARDS)
    assert get_reward("math_correctness") is math_correctness_reward
    assert get_reward("format") is format_reward
    with pytest.raises(KeyError, match="registered"):
        get_reward("no_such_reward")


def test_register_reward_and_duplicates():
    @register_reward("test_length_penalty")
    def length_penalty(completion: str, gold: str) -> float:
        return -len(completion) / 100

    try:
        assert get_reward("test_length_penalty")("x" * 50, "1") == -0.5
        assert compute_rewards("test_length_penalty", ["x" * 10, ""], ["1", "2"]) == [-0.1, 0.0]
        with pytest.raises(ValueError, match="already registered"):
            register_reward("test_length_penalty")(length_penalty)
    finally:
        REWARDS.pop("test_length_penalty")


def test_math_correctness_reward():
    assert math_correctness_reward(r"so \boxed{\frac{1}{2}}", "0.5") == 1.0
    assert math_correctness_reward(r"so \boxed{\frac{1}{3}}", "0.5") == 0.0
    assert math_correctness_reward("no answer here", "0.5") == 0.0
    assert math_correctness_reward("The final answer is 0.5", "0.5") == 1.0  # same as grade()
    assert get_reward("math_correctness_strict")("The final answer is 0.5", "0.5") == 0.0
    assert get_reward("math_correctness_strict")(r"\boxed{0.5}", "0.5") == 1.0


def test_batched_rewards_match_single_calls():
    completions = [r"\boxed{2}", r"\boxed{3}", "Answer: 2", "nothing", r"\boxed{9^{9^{9^9}}}"]
    golds = ["2", "2", "2", "2", "2"]
    for name in ("math_correctness", "math_correctness_strict", "format"):
        single = [get_reward(name)(c, g) for c, g in zip(completions, golds)]
        assert compute_rewards(name, completions, golds) == single
    assert compute_rewards("math_correctness", completions, golds) == [1.0, 0.0, 1.0, 0.0, 0.0]
    graded = [grade(c, g).correct for c, g in zip(completions, golds)]
    assert graded == [True, False, True, False, False]
    with pytest.raises(ValueError):
        compute_rewards("format", ["a"], [])


@pytest.mark.parametrize(
    "completion, expected",
    [
        (r"The answer is \boxed{5}.", 1.0),
        ("<think>let me see: 2+3</think>\nSo \\boxed{5}", 1.0),
        ("  <think>\nhmm\n</think> \\boxed{5}", 1.0),
        ("reasoning opened by the prompt...</think>The answer is \\boxed{5}", 1.0),
        ("The answer is 5.", 0.0),  # no box
        (r"The answer is \boxed{}", 0.0),  # empty box
        (r"The answer is \boxed{\frac{1}{2}", 0.0),  # unclosed box
        ("<think>so \\boxed{5}</think> done", 0.0),  # answer only inside the thinking
        ("<think>a</think><think>b</think>\\boxed{5}", 0.0),  # two think blocks
        ("<think>never closed \\boxed{5}", 0.0),
        ("preamble <think>x</think> \\boxed{5}", 0.0),  # text before <think>
        ("</think> x <think> \\boxed{5}", 0.0),  # closed before opened
    ],
)
def test_format_reward(completion, expected):
    assert format_reward(completion) == expected
    assert format_reward(completion, "ignored gold") == expected
