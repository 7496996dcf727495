"""Generation on 8 virtual devices equals generation on one."""

import re

import jax
import numpy as np
import pytest

from reasonrl import models, parallel, sampling
from tests.sampling.test_generate import make_prompts

PROMPT_LENGTHS = (6, 21, 3)  # 3 prompts: padded to the number of batch shards inside


@pytest.fixture(scope="module")
def unsharded(hf_checkpoints):
    path = hf_checkpoints["qwen3"][1]
    config, params = models.load_hf_checkpoint(path)
    prompts = make_prompts(config.vocab_size, PROMPT_LENGTHS, seed=5)
    greedy = sampling.generate(
        config, params, prompts, max_new_tokens=12, rng=jax.random.key(0), temperature=0.0
    )
    sampled = sampling.generate(
        config,
        params,
        prompts,
        max_new_tokens=12,
        rng=jax.random.key(1),
        temperature=0.8,
        top_p=0.9,
        num_samples=2,
    )
    return path, prompts, greedy, sampled


@pytest.mark.parametrize("engine", ["continuous", "static"])
@pytest.mark.parametrize("mesh_shape", [(2, 2, 2), (1, 8, 1)])
def test_sharded_generation_equals_unsharded(mesh_shape, engine, unsharded):
    """Either engine, on either mesh, gives the unsharded continuous engine's rows."""
    path, prompts, greedy, sampled = unsharded
    mesh = parallel.make_mesh(mesh_shape)
    config, params = models.load_hf_checkpoint(path, mesh=mesh)
    assert models.mesh_of(params) is not None
    got = sampling.generate(
        config,
        params,
        prompts,
        max_new_tokens=12,
        rng=jax.random.key(0),
        temperature=0.0,
        engine=engine,
    )
    np.testing.assert_array_equal(got.tokens, greedy.tokens)
    np.testing.assert_allclose(got.logprobs, greedy.logprobs, atol=1e-5, rtol=0)
    # Per-row keys do not depend on sharding or batch padding: sampled rows match too.
    got = sampling.generate(
        config,
        params,
        prompts,
        max_new_tokens=12,
        rng=jax.random.key(1),
        temperature=0.8,
        top_p=0.9,
        num_samples=2,
        engine=engine,
        decode_slots=8 if engine == "continuous" else None,  # fewer slots than the 8 rows
    )
    np.testing.assert_array_equal(got.tokens, sampled.tokens)
    np.testing.assert_allclose(got.logprobs, sampled.logprobs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sampling_logprobs, sampled.sampling_logprobs, atol=1e-5, rtol=0)


def test_sharded_early_exit_ignores_batch_padding_rows(unsharded):
    """3 prompts on 8 batch shards: the 5 padding rows must not keep the loop running."""
    path, prompts, greedy, _ = unsharded
    config, params = models.load_hf_checkpoint(path, mesh=parallel.make_mesh((1, 8, 1)))
    stops = tuple(int(t) for t in greedy.tokens[:, 1])
    got = sampling.generate(
        config,
        params,
        prompts,
        max_new_tokens=12,
        rng=jax.random.key(0),
        temperature=0.0,
        stop_tokens=stops,
    )
    assert (got.finish_reasons == "stop").all()
    assert got.decode_steps == got.lengths.max() <= 2


@pytest.mark.parametrize("mesh_shape", [(2, 2, 2), (1, 8, 1)])
def test_sharded_engine_never_moves_a_cache_between_devices(mesh_shape, unsharded):
    """The engine's compiled program has no collective on a rank-5 array: the slot cache and
    the prompts' cache ([L, rows, K, slots, Dh]) stay on the devices that own their rows
    (admission copies a prompt into a slot of the same rows; only small arrays cross)."""
    import jax.numpy as jnp

    from reasonrl.parallel import DEFAULT_RULES
    from reasonrl.sampling.decode import SamplerSettings
    from reasonrl.sampling.engine import build_engine

    path = unsharded[0]
    mesh = parallel.make_mesh(mesh_shape)
    config, params = models.load_hf_checkpoint(path, mesh=mesh)
    run = build_engine(config, mesh, DEFAULT_RULES, 8, 16, 300, 2, 8, False, False, True)
    settings = SamplerSettings(
        jnp.float32(1.0),
        jnp.int32(0),
        jnp.float32(0.9),
        jnp.int32(0),
        jnp.zeros((config.vocab_size,), bool),
    )
    tokens, lengths = np.ones((8, 16), np.int32), np.full((8,), 16, np.int32)
    budgets = np.full((16,), 300, np.int32)
    hlo = (
        run.lower(params, tokens, lengths, budgets, jnp.int32(16), jax.random.key(0), settings)
        .compile()
        .as_text()
    )
    collectives = [
        line
        for line in hlo.splitlines()
        if any(f" {op}(" in line for op in ("all-gather", "all-reduce", "all-to-all"))
        or " collective-permute(" in line
    ]
    assert collectives, "expected the model's own collectives (params, logits)"
    rank5 = [line for line in collectives if re.search(r"= \w+\[\d+,\d+,\d+,\d+,\d+\]", line)]
    assert not rank5, rank5[:3]
