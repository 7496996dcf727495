"""The same forward on different meshes equals the unsharded one; params follow the rules."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from reasonrl import models, parallel

MESHES = [(8, 1, 1), (1, 8, 1), (2, 2, 2)]


@pytest.fixture(scope="module")
def reference(hf_checkpoints):
    path = hf_checkpoints["qwen3"][1]
    config, params = models.load_hf_checkpoint(path)
    rng = np.random.RandomState(0)
    tokens = rng.randint(0, config.vocab_size, (8, 24)).astype(np.int32)
    segments = np.repeat(np.array([[1] * 10 + [2] * 14]), 8, axis=0).astype(np.int32)
    positions = np.concatenate([np.arange(10), np.arange(14)])[None].repeat(8, 0).astype(np.int32)
    logits = np.asarray(
        models.forward(config, params, tokens, positions=positions, segment_ids=segments)
    )
    return path, (tokens, positions, segments), logits


@pytest.mark.parametrize("mesh_shape", MESHES)
def test_sharded_forward_equals_unsharded(mesh_shape, reference):
    path, (tokens, positions, segments), expected = reference
    mesh = parallel.make_mesh(mesh_shape)
    config, params = models.load_hf_checkpoint(path, mesh=mesh)
    logits = models.forward(config, params, tokens, positions=positions, segment_ids=segments)
    assert logits.sharding.mesh.shape == mesh.shape
    np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-5, rtol=0)


def _spec(array):
    return tuple(array.sharding.spec) + (None,) * (array.ndim - len(array.sharding.spec))


@pytest.mark.parametrize("mesh_shape", MESHES)
def test_loaded_params_are_sharded_as_the_rules_say(mesh_shape, reference):
    path = reference[0]
    mesh = parallel.make_mesh(mesh_shape)
    config, params = models.load_hf_checkpoint(path, mesh=mesh)
    axes = models.param_logical_axes(config)
    for leaf, names in zip(
        jax.tree.leaves(params), jax.tree.leaves(axes, is_leaf=lambda x: isinstance(x, tuple))
    ):
        expected = parallel.logical_to_spec(names, leaf.shape, mesh)
        assert leaf.sharding.mesh is mesh or leaf.sharding.mesh == mesh
        assert _spec(leaf) == tuple(expected) + (None,) * (leaf.ndim - len(expected))
        # Each device holds exactly its shard, not a full copy.
        shard_shape = leaf.sharding.shard_shape(leaf.shape)
        assert all(s.data.shape == shard_shape for s in leaf.addressable_shards)


def test_concrete_shardings_for_each_mesh(reference):
    """Spot checks written out by hand, so a broken rules table cannot pass silently."""
    path = reference[0]
    expected = {
        (8, 1, 1): {"q_kernel": (None, None, None, None), "embedding": (None, None)},
        (1, 8, 1): {
            "q_kernel": (None, "fsdp", None, None),
            "embedding": (None, "fsdp"),
            "down_kernel": (None, None, "fsdp"),
        },
        (2, 2, 2): {
            "q_kernel": (None, "fsdp", "tensor", None),
            "embedding": ("tensor", "fsdp"),
            "down_kernel": (None, "tensor", "fsdp"),
            "o_kernel": (None, "tensor", None, "fsdp"),
        },
    }
    for mesh_shape, checks in expected.items():
        mesh = parallel.make_mesh(mesh_shape)
        _, params = models.load_hf_checkpoint(path, mesh=mesh)
        found = {
            "q_kernel": params["layers"]["attn"]["q_kernel"],
            "o_kernel": params["layers"]["attn"]["o_kernel"],
            "embedding": params["embedding"],
            "down_kernel": params["layers"]["mlp"]["down_kernel"],
        }
        for name, spec in checks.items():
            assert _spec(found[name]) == spec, (mesh_shape, name, _spec(found[name]))


def test_init_params_directly_sharded_and_forward_matches():
    config = models.get_preset("tiny-llama")
    mesh = parallel.make_mesh((2, 2, 2))
    sharded = models.init_params(config, jax.random.key(3), mesh=mesh)
    single = models.init_params(config, jax.random.key(3))
    emb = sharded["embedding"]
    assert _spec(emb) == ("tensor", "fsdp")
    assert emb.addressable_shards[0].data.shape == (config.vocab_size // 2, config.hidden_size // 2)
    tokens = np.random.RandomState(0).randint(0, config.vocab_size, (4, 16)).astype(np.int32)
    np.testing.assert_allclose(
        np.asarray(models.forward(config, sharded, tokens)),
        np.asarray(models.forward(config, single, tokens)),
        atol=1e-5,
    )


def test_indivisible_dims_stay_replicated_and_are_explained():
    config = models.get_preset("tiny-llama")  # 2 KV heads
    mesh = parallel.make_mesh((1, 2, 4))
    specs = models.param_shardings(config, mesh)
    assert tuple(specs["layers"]["attn"]["k_kernel"].spec)[:3] == (None, "fsdp", None)
    assert tuple(specs["layers"]["attn"]["q_kernel"].spec)[:3] == (None, "fsdp", "tensor")
    lines = parallel.explain(models.param_logical_axes(config), models.param_shapes(config), mesh)
    assert any("k_kernel" in line and "kv_heads=2" in line for line in lines), lines


def test_rules_table_is_the_single_source(reference):
    """Swapping the rule for 'embed' from fsdp to nothing changes where params land."""
    rules = tuple((name, () if name == "embed" else axes) for name, axes in parallel.DEFAULT_RULES)
    mesh = parallel.make_mesh((1, 8, 1))
    config, params = models.load_hf_checkpoint(reference[0], mesh=mesh, rules=rules)
    assert _spec(params["layers"]["attn"]["q_kernel"]) == (None, None, None, None)
    assert P(*_spec(params["embedding"])) == P(None, None)
    tokens, positions, segments = reference[1]
    logits = models.forward(
        config, params, tokens, positions=positions, segment_ids=segments, rules=rules
    )
    np.testing.assert_allclose(np.asarray(logits), reference[2], atol=1e-5, rtol=0)
