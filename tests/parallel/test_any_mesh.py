"""Any mesh a JAX user builds works: `jax.make_mesh` (Explicit axes by default since JAX 0.7),
Explicit or Auto axes, set globally with `jax.set_mesh` or not, gives the numbers of
`parallel.make_mesh`, and the outputs live on (and combine with arrays on) the user's mesh."""

import contextlib

import jax
import ml_collections
import numpy as np
import optax
import pytest
from jax.sharding import AxisType

from reasonrl import models, parallel, sampling
from reasonrl.models.layers import ActivationSharding
from reasonrl.objectives import ModelContext, get_objective
from reasonrl.train import StepConfig, TrainState, jit_train_step, make_train_step, state_shardings

AXES = ("data", "fsdp", "tensor")
# (axis types for jax.make_mesh (None: its default), set the mesh globally with jax.set_mesh)
CASES = {
    "default": (None, False),
    "explicit": ((AxisType.Explicit,) * 3, False),
    "explicit-set_mesh": ((AxisType.Explicit,) * 3, True),
    "auto": ((AxisType.Auto,) * 3, False),
    "auto-set_mesh": ((AxisType.Auto,) * 3, True),
}
OBJECTIVE_CONFIG = ml_collections.FrozenConfigDict(
    dict(z_loss_coef=1e-3, logits_chunk_size=16, report_entropy=False)
)
_STEPS = {}  # mesh -> (train step, shardings): one compilation per distinct mesh


def _user_mesh(case):
    axis_types, use_global = CASES[case]
    mesh = jax.make_mesh((2, 2, 2), AXES, axis_types=axis_types)
    return mesh, (jax.set_mesh(mesh) if use_global else contextlib.nullcontext())


def _batch(config, rows=8, length=12):
    rng = np.random.RandomState(0)
    return dict(
        tokens=rng.randint(0, config.vocab_size, (rows, length)).astype(np.int32),
        targets=rng.randint(0, config.vocab_size, (rows, length)).astype(np.int32),
        loss_mask=(rng.rand(rows, length) < 0.8).astype(np.float32),
        positions=np.broadcast_to(np.arange(length), (rows, length)).astype(np.int32),
        segment_ids=np.ones((rows, length), np.int32),
    )


def _train_step(config, params, mesh):
    """(state after one momentum-SGD step, metrics), the state placed as a user would."""
    tx = optax.sgd(0.5, momentum=0.9)
    state = TrainState.create(params, tx, jax.random.key(3))
    if mesh not in _STEPS:
        shardings = state_shardings(
            jax.eval_shape(lambda: state), models.param_shardings(config, mesh), mesh
        )
        step_fn = make_train_step(
            get_objective("next_token").fn,
            OBJECTIVE_CONFIG,
            ModelContext(config, ActivationSharding(mesh)),
            tx,
            optax.constant_schedule(0.5),
            StepConfig(),
        )
        batch_keys = tuple(sorted(_batch(config)))
        _STEPS[mesh] = (jit_train_step(step_fn, shardings, mesh, batch_keys), shardings)
    step, shardings = _STEPS[mesh]
    return step(jax.device_put(state, shardings), _batch(config))


def _generate(config, params, prompts):
    return sampling.generate(
        config, params, prompts, max_new_tokens=6, rng=jax.random.key(0), temperature=0.0
    )


@pytest.fixture(scope="module")
def reference(hf_checkpoints):
    """Results on the project's own (Auto) mesh."""
    path = hf_checkpoints["qwen3"][1]
    mesh = parallel.make_mesh((2, 2, 2))
    config, params = models.load_hf_checkpoint(path, mesh=mesh)
    tokens = _batch(config)["tokens"]
    prompts = [tokens[0, :5].tolist(), tokens[1, :9].tolist(), tokens[2, :3].tolist()]
    logits = np.asarray(models.forward(config, params, tokens))
    greedy = _generate(config, params, prompts)
    state, metrics = _train_step(config, params, mesh)
    return dict(
        path=path,
        tokens=tokens,
        prompts=prompts,
        logits=logits,
        greedy=greedy,
        params=jax.device_get(state.params),
        loss=float(metrics["loss"]),
    )


def _on_mesh(tree, mesh):
    for leaf in jax.tree.leaves(tree):
        assert leaf.sharding.mesh == mesh, (leaf.sharding, mesh)


@pytest.mark.parametrize("case", list(CASES))
def test_forward_on_any_mesh(case, reference):
    mesh, context = _user_mesh(case)
    with context:
        config, params = models.load_hf_checkpoint(reference["path"], mesh=mesh)
        _on_mesh(params, mesh)
        logits = models.forward(config, params, reference["tokens"])
        _on_mesh(logits, mesh)
        # Usable on the user's mesh: reductions and arithmetic with the user's arrays.
        total = (logits * 2.0).sum() + params["embedding"].sum()
    np.testing.assert_allclose(np.asarray(logits), reference["logits"], atol=1e-5, rtol=0)
    expected = 2.0 * reference["logits"].sum() + np.asarray(params["embedding"]).sum()
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_greedy_generation_on_any_mesh(case, reference):
    mesh, context = _user_mesh(case)
    with context:
        config, params = models.load_hf_checkpoint(reference["path"], mesh=mesh)
        got = _generate(config, params, reference["prompts"])
    np.testing.assert_array_equal(got.tokens, reference["greedy"].tokens)
    np.testing.assert_allclose(got.logprobs, reference["greedy"].logprobs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_train_step_on_any_mesh(case, reference):
    mesh, context = _user_mesh(case)
    with context:
        config, params = models.load_hf_checkpoint(reference["path"], mesh=mesh)
        state, metrics = _train_step(config, params, mesh)
        _on_mesh((state, metrics), mesh)
        norm = jax.jit(optax.tree.norm)(state.params) + metrics["loss"]  # usable on the mesh
    np.testing.assert_allclose(float(metrics["loss"]), reference["loss"], atol=1e-5, rtol=0)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=0),
        jax.device_get(state.params),
        reference["params"],
    )
    expected = float(optax.tree.norm(reference["params"])) + reference["loss"]
    np.testing.assert_allclose(float(norm), expected, rtol=1e-5)


def test_init_params_on_an_explicit_mesh():
    config = models.get_preset("tiny-llama")
    mesh = jax.make_mesh((2, 2, 2), AXES, axis_types=(AxisType.Explicit,) * 3)
    expected = models.init_params(config, jax.random.key(3), mesh=parallel.make_mesh((2, 2, 2)))
    with jax.set_mesh(mesh):
        params = models.init_params(config, jax.random.key(3), mesh=mesh)
    _on_mesh(params, mesh)
    jax.tree.map(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, expected
    )


def test_auto_view_shares_devices_and_buffers():
    mesh = jax.make_mesh((2, 2, 2), AXES, axis_types=(AxisType.Explicit,) * 3)
    auto = parallel.auto_mesh(mesh)
    assert auto.axis_types == (AxisType.Auto,) * 3 and auto.axis_names == mesh.axis_names
    assert (auto.devices == mesh.devices).all()
    assert parallel.auto_mesh(auto) is auto
    x = jax.device_put(
        np.arange(16.0).reshape(8, 2),
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(("data", "fsdp"))),
    )
    viewed = parallel.view_on_mesh({"x": x, "n": 3}, auto)
    assert viewed["x"].sharding.mesh == auto and viewed["n"] == 3
    assert (
        viewed["x"].addressable_shards[0].data.unsafe_buffer_pointer()
        == x.addressable_shards[0].data.unsafe_buffer_pointer()
    )


def test_jit_on_mesh_runs_on_the_auto_view():
    mesh = jax.make_mesh((2, 2, 2), AXES, axis_types=(AxisType.Explicit,) * 3)
    rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(("data", "fsdp")))
    table = jax.device_put(
        np.arange(32.0).reshape(8, 4),
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("tensor", "fsdp")),
    )
    # A gather from a sharded table: needs out_sharding= on Explicit axes, not on Auto ones.
    lookup = parallel.jit_on_mesh(
        lambda t, i: t[i], mesh, in_shardings=(table.sharding, rows), out_shardings=rows
    )
    ids = np.array([7, 0, 3, 3], np.int32)
    with jax.set_mesh(mesh):
        got = lookup(table, ids)
    assert got.sharding.mesh == mesh
    np.testing.assert_array_equal(np.asarray(got), np.arange(32.0).reshape(8, 4)[ids])


def test_jit_on_mesh_inside_another_jit_is_a_nested_jit():
    mesh = parallel.make_mesh((2, 2, 2))
    rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(("data", "fsdp")))
    double = parallel.jit_on_mesh(lambda x: 2 * x, mesh, in_shardings=(rows,), out_shardings=rows)
    x = np.arange(8.0)
    assert float(jax.jit(lambda x: double(x).sum())(x)) == 56.0
