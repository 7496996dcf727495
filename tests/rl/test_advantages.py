"""Group advantage estimators against independent NumPy references, with edge cases."""

import jax
import numpy as np
import pytest

from reasonrl.rl import ADVANTAGE_ESTIMATORS, get_advantage_estimator


def _numpy_reference(name, rewards, group_size, eps=1e-6):
    """Loops over groups and samples, formulas written straight from the papers."""
    rewards = np.asarray(rewards, np.float64)
    out = np.zeros_like(rewards)
    for start in range(0, len(rewards), group_size):
        group = rewards[start : start + group_size]
        for i, reward in enumerate(group):
            if group_size == 1:
                continue  # documented: a lone sample has advantage 0
            if name == "grpo":
                out[start + i] = (reward - group.mean()) / (np.std(group, ddof=1) + eps)
            elif name == "drgrpo":
                out[start + i] = reward - group.mean()
            elif name == "rloo":
                out[start + i] = reward - np.delete(group, i).mean()
    return out


def test_registry_lists_the_three_estimators():
    assert sorted(ADVANTAGE_ESTIMATORS) == ["drgrpo", "grpo", "rloo"]
    with pytest.raises(KeyError, match="grpo"):
        get_advantage_estimator("ppo_gae")


@pytest.mark.parametrize("name", ["grpo", "drgrpo", "rloo"])
@pytest.mark.parametrize("group_size", [1, 2, 5, 8])
def test_estimator_matches_numpy(name, group_size):
    rng = np.random.RandomState(group_size)
    rewards = rng.randn(3 * group_size).astype(np.float32)
    rewards[:group_size] = 0.7  # first group all equal
    if group_size > 2:
        rewards[group_size : 2 * group_size] = rng.randint(0, 2, group_size)  # binary rewards
    got = np.asarray(jax.jit(get_advantage_estimator(name), static_argnums=1)(rewards, group_size))
    expected = _numpy_reference(name, rewards, group_size)
    assert got.shape == rewards.shape and got.dtype == np.float32
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=1e-6)
    np.testing.assert_array_equal(got[:group_size], 0.0)  # all-equal group: exactly 0
    if group_size > 1:
        assert np.abs(got[2 * group_size :]).max() > 0.1  # a random group gets real signal


def test_group_size_one_is_zero_for_every_estimator():
    rewards = np.array([1.0, -2.0, 3.0], np.float32)
    for name, estimator in ADVANTAGE_ESTIMATORS.items():
        np.testing.assert_array_equal(estimator(rewards, 1), 0.0, err_msg=name)


def test_groups_are_contiguous_not_strided():
    rewards = np.array([1.0, 1.0, 0.0, 0.0], np.float32)  # two groups of equal rewards
    np.testing.assert_array_equal(get_advantage_estimator("drgrpo")(rewards, 2), 0.0)
    np.testing.assert_allclose(
        get_advantage_estimator("drgrpo")(rewards, 4), [0.5, 0.5, -0.5, -0.5]
    )


def test_rloo_is_scaled_mean_centring():
    rewards = np.random.RandomState(0).randn(12).astype(np.float32)
    np.testing.assert_allclose(
        get_advantage_estimator("rloo")(rewards, 4),
        4 / 3 * np.asarray(get_advantage_estimator("drgrpo")(rewards, 4)),
        atol=1e-6,
    )


def test_rewards_that_do_not_split_into_groups_are_rejected():
    with pytest.raises(ValueError, match="groups of 4"):
        get_advantage_estimator("grpo")(np.zeros(6, np.float32), 4)
