"""The run's fixed pieces: problem selection and the PRNG keys that resumes depend on."""

import jax
import numpy as np

from evals.common import runner
from reasonrl.sampling.keys import batch_rng, stable_hash


def test_stable_hash_is_fixed():
    # Resumed runs must draw the keys the first attempt drew: these values may never change.
    assert stable_hash("2024-I-1") == 1338869821
    assert stable_hash("test/precalculus/807.json") == 748161219


def test_batch_rng_is_fold_in_of_the_first_problem_id():
    expected = jax.random.fold_in(jax.random.key(3), stable_hash("2024-I-1"))
    np.testing.assert_array_equal(
        jax.random.key_data(batch_rng(3, "2024-I-1")), jax.random.key_data(expected)
    )
    assert not np.array_equal(
        jax.random.key_data(batch_rng(3, "2024-I-1")), jax.random.key_data(batch_rng(4, "2024-I-1"))
    )


def test_select_problems_limit():
    assert len(runner.select_problems("math500", None)) == 500
    first = runner.select_problems("aime24", 2)
    assert [problem.id for problem in first] == [
        problem.id for problem in runner.select_problems("aime24", None)[:2]
    ]
