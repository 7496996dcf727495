"""Reward shaping (Kimi k1.5 length penalty, DAPO overlong punishment, format) against
hand-computed values and independent loop references written from docs/methods.md §5."""

import numpy as np
import pytest

from reasonrl.rewards import (
    LENGTH_PENALTIES,
    ShapedReward,
    dapo_overlong_penalty,
    get_length_penalty,
    kimi_length_penalty,
    register_length_penalty,
    shape_rewards,
)


def _kimi_reference(lengths, correct, group_size):
    """Sample-by-sample loop, straight from the Kimi k1.5 paper's definition."""
    out = []
    for start in range(0, len(lengths), group_size):
        group = [float(x) for x in lengths[start : start + group_size]]
        lo, hi = min(group), max(group)
        for i, length in enumerate(group):
            lam = 0.0 if hi == lo else 0.5 - (length - lo) / (hi - lo)
            out.append(lam if correct[start + i] else min(0.0, lam))
    return np.array(out)


def _dapo_reference(length, max_length, cache_length):
    if length <= max_length - cache_length:
        return 0.0
    if length <= max_length:
        return ((max_length - cache_length) - length) / cache_length
    return -1.0


# ---------------------------------------------------------------- Kimi length penalty


def test_kimi_hand_computed():
    # group 1: min 10, max 50, span 40 -> lambda = 0.5 - [0, 10, 20, 40] / 40 = [.5, .25, 0, -.5]
    # group 2: all lengths equal -> 0 everywhere
    # group 3: min 60, max 100 -> lambda = [-.5, .5, 0, .5]
    lengths = [10, 20, 30, 50, 7, 7, 7, 7, 100, 60, 80, 60]
    correct = [1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1]
    expected = [0.5, 0.0, 0.0, -0.5, 0, 0, 0, 0, -0.5, 0.5, 0.0, 0.5]
    out = kimi_length_penalty(np.array(lengths), np.array(correct, bool), 4)
    assert out.shape == (12,) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_kimi_wrong_answers_never_rewarded_for_being_short():
    out = kimi_length_penalty([5, 10, 15], [False, False, False], 3)
    np.testing.assert_allclose(out, [0.0, 0.0, -0.5])


@pytest.mark.parametrize("group_size", [1, 2, 5])
def test_kimi_matches_loop_reference(group_size):
    rng = np.random.RandomState(group_size)
    lengths = rng.randint(1, 40, size=6 * group_size)
    lengths[:group_size] = 17  # one all-equal group
    correct = rng.rand(6 * group_size) < 0.5
    np.testing.assert_allclose(
        kimi_length_penalty(lengths, correct, group_size),
        _kimi_reference(lengths, correct, group_size),
        atol=1e-6,
    )


def test_kimi_group_size_one_is_zero():
    out = kimi_length_penalty([3, 900, 12], [True, False, True], 1)
    np.testing.assert_array_equal(out, np.zeros(3, np.float32))


def test_kimi_rejects_bad_shapes():
    with pytest.raises(ValueError, match="groups of 4"):
        kimi_length_penalty(np.arange(6), np.ones(6, bool), 4)
    with pytest.raises(ValueError, match="correct"):
        kimi_length_penalty(np.arange(4), np.ones(3, bool), 2)


# ---------------------------------------------------------------- DAPO overlong punishment


def test_dapo_overlong_hand_computed():
    # L_max 20, L_cache 4: soft region (16, 20]
    out = dapo_overlong_penalty([0, 16, 17, 18, 20, 21, 100], max_length=20, cache_length=4)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, -0.25, -0.5, -1, -1, -1], atol=1e-7)


def test_dapo_overlong_paper_setting_matches_reference():
    lengths = np.array([1, 16_384, 16_385, 18_432, 20_479, 20_480, 20_481, 30_000])
    out = dapo_overlong_penalty(lengths, max_length=20_480, cache_length=4_096)
    expected = [_dapo_reference(x, 20_480, 4_096) for x in lengths]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out[3] == pytest.approx(-0.5)  # (16384 - 18432) / 4096


def test_dapo_overlong_zero_cache_is_hard_cutoff():
    np.testing.assert_array_equal(dapo_overlong_penalty([9, 10, 11], 10, 0), [0, 0, -1])


def test_dapo_overlong_rejects_bad_cache():
    with pytest.raises(ValueError, match="cache_length"):
        dapo_overlong_penalty([1, 2], max_length=10, cache_length=11)
    with pytest.raises(ValueError, match="cache_length"):
        dapo_overlong_penalty([1, 2], max_length=10, cache_length=-1)


# ---------------------------------------------------------------- shape_rewards


def test_shape_rewards_all_components_hand_computed():
    # G = 2. Kimi (weight 0.1): group 1 lengths 10, 30 -> [.5, -.5] (2nd wrong: min(0, -.5));
    # group 2 lengths 18, 19 both correct -> [.5, -.5].
    # Overlong (L_max 20, L_cache 4): 10 -> 0, 30 -> -1, 18 -> -.5, 19 -> -.75.
    # Format (weight 0.5): [1, 0, 1, 1] -> [.5, 0, .5, .5].
    shaped = shape_rewards(
        [1.0, 0.0, 1.0, 1.0],
        [10, 30, 18, 19],
        group_size=2,
        length_penalty="kimi",
        length_penalty_weight=0.1,
        overlong={"max_length": 20, "cache_length": 4},
        format_scores=[1.0, 0.0, 1.0, 1.0],
        format_weight=0.5,
    )
    assert isinstance(shaped, ShapedReward)
    assert shaped.total.dtype == np.float32 and shaped.total.shape == (4,)
    np.testing.assert_allclose(shaped.total, [1.55, -1.05, 1.05, 0.7], atol=1e-6)
    assert list(shaped.components) == ["correctness", "length", "overlong", "format"]
    np.testing.assert_allclose(shaped.components["length"], [0.05, -0.05, 0.05, -0.05], atol=1e-7)
    np.testing.assert_allclose(shaped.components["overlong"], [0, -1, -0.5, -0.75])
    np.testing.assert_allclose(shaped.components["format"], [0.5, 0, 0.5, 0.5])
    np.testing.assert_allclose(sum(shaped.components.values()), shaped.total, atol=1e-6)


def test_shape_rewards_plain_correctness_passes_through():
    shaped = shape_rewards([1, 0, 0, 1], [5, 50, 500, 5000], group_size=2)
    np.testing.assert_array_equal(shaped.total, [1, 0, 0, 1])
    assert list(shaped.components) == ["correctness"]


def test_shape_rewards_dapo_signed_correctness_sets_correct_mask():
    # DAPO's +-1 rewards: -1 is wrong, so its Kimi term is min(0, lambda) = 0 for the short one.
    shaped = shape_rewards([-1, 1], [10, 20], group_size=2, length_penalty="kimi")
    np.testing.assert_allclose(shaped.components["length"], [0.0, -0.5])
    np.testing.assert_allclose(shaped.total, [-1.0, 0.5])


def test_shape_rewards_matches_references_on_random_batch():
    rng = np.random.RandomState(0)
    group_size, n = 4, 24
    correctness = (rng.rand(n) < 0.5).astype(np.float64)
    lengths = rng.randint(1, 60, size=n)
    fmt = (rng.rand(n) < 0.7).astype(np.float64)
    shaped = shape_rewards(
        correctness,
        lengths,
        group_size=group_size,
        length_penalty="kimi",
        length_penalty_weight=0.3,
        overlong={"max_length": 50, "cache_length": 10},
        format_scores=fmt,
        format_weight=0.2,
    )
    expected = (
        correctness
        + 0.3 * _kimi_reference(lengths, correctness > 0, group_size)
        + np.array([_dapo_reference(x, 50, 10) for x in lengths])
        + 0.2 * fmt
    )
    np.testing.assert_allclose(shaped.total, expected, atol=1e-5)


def test_shape_rewards_errors():
    with pytest.raises(KeyError, match="kimi"):
        shape_rewards([1, 0], [1, 2], group_size=2, length_penalty="linear")
    with pytest.raises(ValueError, match="format_scores"):
        shape_rewards([1, 0], [1, 2], group_size=2, format_weight=0.5)
    with pytest.raises(ValueError, match="cache_length"):
        shape_rewards([1, 0], [1, 2], group_size=2, overlong={"max_length": 10})
    with pytest.raises(ValueError, match="lengths"):
        shape_rewards([1, 0], [1, 2, 3], group_size=2)
    with pytest.raises(ValueError, match="groups of 3"):
        shape_rewards([1, 0], [1, 2], group_size=3)
    with pytest.raises(ValueError, match="format_scores"):
        shape_rewards([1, 0], [1, 2], group_size=2, format_scores=[1], format_weight=1.0)


def test_length_penalty_registry():
    assert get_length_penalty("kimi") is kimi_length_penalty
    with pytest.raises(ValueError, match="already registered"):
        register_length_penalty("kimi")(kimi_length_penalty)

    @register_length_penalty("_test_constant")
    def constant(lengths, correct, group_size):
        return np.full(len(lengths), -0.25, np.float32)

    try:
        shaped = shape_rewards(
            [1, 0], [1, 2], group_size=2, length_penalty="_test_constant", length_penalty_weight=2.0
        )
        np.testing.assert_allclose(shaped.total, [0.5, -0.5])
    finally:
        del LENGTH_PENALTIES["_test_constant"]
