"""DAPO dynamic sampling: informative-group detection and the group buffer, against hand-worked
batches and a plain-Python FIFO reference."""

import jax
import numpy as np
import pytest

from reasonrl.rl import DynamicSample, DynamicSamplingBuffer, informative_groups


def _batch(rewards, first_id, group_size=2):
    """A rollout batch whose fields all encode the sample id, to check alignment."""
    n = len(rewards)
    ids = np.arange(first_id, first_id + n)
    return {
        "rewards": np.asarray(rewards, np.float32),
        "ids": ids,
        "tokens": np.stack([ids, ids * 10, ids * 100], axis=1),  # [n, 3]
        "completions": [f"c{i}" for i in ids],  # list of str
    }


def _assert_aligned(batch):
    ids = batch["ids"]
    np.testing.assert_array_equal(batch["tokens"], np.stack([ids, ids * 10, ids * 100], axis=1))
    assert list(batch["completions"]) == [f"c{i}" for i in ids]


# ---------------------------------------------------------------- informative_groups


def test_informative_groups_hand_computed():
    rewards = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0.5, 0.5, 0.25]
    out = informative_groups(np.array(rewards), 3)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, [False, True, False, True])


def test_informative_groups_edge_cases():
    np.testing.assert_array_equal(informative_groups([0.0, 1.0, 1.0], 1), [False] * 3)
    assert informative_groups(np.zeros(0), 4).shape == (0,)
    with pytest.raises(ValueError, match="groups of 4"):
        informative_groups(np.zeros(6), 4)
    with pytest.raises(ValueError, match="NaN"):
        informative_groups([0.0, np.nan], 2)


# ---------------------------------------------------------------- DynamicSamplingBuffer


def test_buffer_collects_informative_groups_and_carries_surplus():
    buf = DynamicSamplingBuffer(group_size=2)
    # round 1: groups (0,1) yes, (2,3) no, (4,5) yes
    assert buf.add(_batch([1, 0, 1, 1, 0, 1], first_id=0)) == 2
    assert buf.num_groups == 2 and not buf.ready(3)
    with pytest.raises(RuntimeError, match="2 of 3"):
        buf.pop(3)
    # round 2: groups (6,7) no, (8,9) yes, (10,11) yes
    assert buf.add(_batch([0, 0, 1, 0, 0, 1], first_id=6)) == 2
    assert buf.ready(3)

    sample = buf.pop(3)
    assert isinstance(sample, DynamicSample)
    assert (sample.num_groups, sample.exhausted, sample.rounds) == (3, False, 2)
    assert (sample.groups_seen, sample.groups_dropped) == (6, 2)
    np.testing.assert_array_equal(sample.batch["ids"], [0, 1, 4, 5, 8, 9])
    np.testing.assert_array_equal(sample.batch["rewards"], [1, 0, 0, 1, 1, 0])
    assert sample.batch["tokens"].shape == (6, 3)
    _assert_aligned(sample.batch)

    # surplus (10, 11) carried over, then a new round tops it up
    assert buf.num_groups == 1 and buf.rounds == 0
    assert buf.add(_batch([1, 0, 0, 0], first_id=12)) == 1
    sample = buf.pop(2)
    np.testing.assert_array_equal(sample.batch["ids"], [10, 11, 12, 13])
    assert (sample.rounds, sample.groups_seen, sample.groups_dropped) == (1, 2, 1)
    _assert_aligned(sample.batch)
    assert buf.num_groups == 0


def test_buffer_surplus_spans_several_pops():
    buf = DynamicSamplingBuffer(group_size=3)
    rewards = [0, 1, 1] * 5  # five informative groups in one round
    buf.add(_batch(rewards, first_id=0))
    np.testing.assert_array_equal(buf.pop(2).batch["ids"], np.arange(0, 6))
    second = buf.pop(2)
    np.testing.assert_array_equal(second.batch["ids"], np.arange(6, 12))
    assert second.rounds == 0 and not second.exhausted
    assert not buf.ready(2) and buf.num_groups == 1


def test_buffer_all_uninformative_hits_round_cap():
    buf = DynamicSamplingBuffer(group_size=2, max_rounds=3)
    for round_ in range(3):
        assert not buf.ready(2)
        assert buf.add(_batch([1, 1, 0, 0], first_id=4 * round_)) == 0
    assert buf.ready(2) and buf.exhausted
    sample = buf.pop(2)
    assert (sample.num_groups, sample.exhausted, sample.rounds) == (0, True, 3)
    assert (sample.groups_seen, sample.groups_dropped) == (6, 6)
    assert sample.batch["tokens"].shape == (0, 3)
    assert sample.batch["rewards"].dtype == np.float32
    assert set(sample.batch) == {"rewards", "ids", "tokens", "completions"}
    # the cap is per pop: the round count starts again
    assert buf.rounds == 0 and not buf.ready(2)


def test_buffer_round_cap_returns_partial_batch_with_flag():
    buf = DynamicSamplingBuffer(group_size=2, max_rounds=2)
    buf.add(_batch([1, 0, 1, 1], first_id=0))
    buf.add(_batch([2, 2, 3, 3], first_id=4))
    sample = buf.pop(4)
    assert (sample.num_groups, sample.exhausted) == (1, True)
    np.testing.assert_array_equal(sample.batch["ids"], [0, 1])
    _assert_aligned(sample.batch)


def test_buffer_full_batch_at_round_cap_is_not_flagged():
    buf = DynamicSamplingBuffer(group_size=2, max_rounds=1)
    buf.add(_batch([1, 0, 0, 1, 1, 0], first_id=0))
    sample = buf.pop(2)
    assert (sample.num_groups, sample.exhausted) == (2, False)
    assert buf.num_groups == 1


def test_buffer_group_size_one_keeps_nothing():
    buf = DynamicSamplingBuffer(group_size=1, max_rounds=1)
    assert buf.add(_batch([0, 1, 0], first_id=0, group_size=1)) == 0
    assert buf.pop(1).num_groups == 0


def test_buffer_matches_fifo_reference():
    """Random rounds and pop sizes against a list-of-groups reference."""
    rng = np.random.RandomState(0)
    group_size = 4
    buf = DynamicSamplingBuffer(group_size=group_size, reward_key="score")
    reference: list[list[int]] = []  # queue of informative groups, as lists of sample ids
    next_id = 0
    for _ in range(12):
        num = rng.randint(1, 5)
        score = (rng.rand(num * group_size) < 0.3).astype(np.float64)
        ids = np.arange(next_id, next_id + num * group_size)
        next_id += num * group_size
        for g in range(num):
            group = score[g * group_size : (g + 1) * group_size]
            if len(set(group.tolist())) > 1:
                reference.append(ids[g * group_size : (g + 1) * group_size].tolist())
        buf.add({"score": score, "ids": ids, "logp": -ids.astype(np.float32) / 7})
        want = int(rng.randint(1, 4))
        if len(reference) >= want:
            assert buf.ready(want)
            sample = buf.pop(want)
            expected = [i for group in reference[:want] for i in group]
            reference = reference[want:]
            np.testing.assert_array_equal(sample.batch["ids"], expected)
            np.testing.assert_allclose(sample.batch["logp"], -np.array(expected) / 7, rtol=1e-6)
        else:
            assert not buf.ready(want)
        assert buf.num_groups == len(reference)


def test_buffer_copies_input():
    buf = DynamicSamplingBuffer(group_size=2)
    batch = _batch([1, 0], first_id=0)
    buf.add(batch)
    batch["ids"][:] = -1
    batch["tokens"][:] = -1
    _assert_aligned(buf.pop(1).batch)


def test_buffer_validates_batches():
    buf = DynamicSamplingBuffer(group_size=2)
    with pytest.raises(KeyError, match="rewards"):
        buf.add({"score": np.array([1, 0])})
    with pytest.raises(ValueError, match="'ids'"):
        buf.add({"rewards": np.array([1, 0]), "ids": np.arange(3)})
    buf.add(_batch([1, 0], first_id=0))
    with pytest.raises(ValueError, match="fields"):
        buf.add({"rewards": np.array([1, 0]), "ids": np.arange(2)})
    bad = _batch([1, 0], first_id=2)
    bad["tokens"] = bad["tokens"][:, :2]
    with pytest.raises(ValueError, match="per-sample shape"):
        buf.add(bad)
    assert buf.num_groups == 1 and buf.rounds == 1  # rejected batches change nothing
    with pytest.raises(ValueError, match="group_size"):
        DynamicSamplingBuffer(group_size=0)
    with pytest.raises(ValueError, match="max_rounds"):
        DynamicSamplingBuffer(group_size=2, max_rounds=0)


# ---------------------------------------------------------------- the rl loop's use of it


def _scored_round(correct, rewards):
    n = len(correct)
    return {
        "correct": np.asarray(correct, np.float32),
        "rewards": np.asarray(rewards, np.float32),
        "ids": np.arange(n),
    }


@pytest.mark.parametrize("filter_name, kept_groups", [("accuracy", 1), ("reward", 2)])
def test_loop_filters_on_accuracy_by_default_and_drops_the_surplus(
    monkeypatch, filter_name, kept_groups
):
    """Group 0 is all correct but its overlong-shaped rewards differ: DAPO's accuracy filter
    drops it, the reward filter keeps it. Group 1 is informative either way."""
    from types import SimpleNamespace

    from reasonrl.rl import loop

    rounds = iter([_scored_round([1, 1, 1, 0], [1.0, 0.5, 1.0, 0.0])] * 3)
    monkeypatch.setattr(loop, "sample_rollout", lambda *args, **kwargs: None)
    monkeypatch.setattr(loop, "score_rollout", lambda rollout, settings: next(rounds))
    rl = SimpleNamespace(
        group_size=2,
        max_rollout_rounds=1,
        dynamic_sampling=True,
        dynamic_sampling_filter=filter_name,
    )
    setup = SimpleNamespace(model_config=None)
    batch, counts, _ = loop._collect(
        None, iter([{}] * 3), None, setup, None, rl, 1, jax.random.key(0)
    )
    assert counts["rollout/groups_kept"] == 1
    assert counts["rollout/groups_dropped"] == 2 - kept_groups
    assert counts["rollout/groups_surplus"] == kept_groups - 1  # dropped with the step's buffer
    np.testing.assert_array_equal(batch["ids"], [2, 3] if filter_name == "accuracy" else [0, 1])
    # The next step starts from nothing: no surplus group carried over.
    _, counts, _ = loop._collect(None, iter([{}] * 3), None, setup, None, rl, 1, jax.random.key(1))
    assert counts["rollout/rounds"] == 1 and counts["rollout/groups_seen"] == 2
