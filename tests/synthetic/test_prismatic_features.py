"""Gradient features: the projection against a dense NumPy matrix and the JL bound, per-example
gradients against single-example jax.grad and a NumPy NLL, and features that do not depend on
the batch size or the mesh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl import models, parallel
from reasonrl.synthetic.prismatic import features as features_lib
from reasonrl.synthetic.prismatic import projection

RECORDS = [
    {"question": f"Sam has {n} pens and gets {n + 3} more. How many?", "answer": f"{2 * n + 3}"}
    for n in range(6)
] + [{"question": "What is 2+2?", "answer": "4 because two and two make four."}]
MAX_LENGTH = 64
DIM = 64


def tree_of(rng, batch=None):
    """A pytree with a leaf spanning two projection blocks and two small leaves."""
    shapes = {"big": (projection.BLOCK_SIZE + 5,), "small": {"a": (3, 4), "b": (7,)}}
    lead = () if batch is None else (batch,)
    return jax.tree.map(
        lambda shape: rng.standard_normal(lead + shape).astype(np.float32),
        shapes,
        is_leaf=lambda x: isinstance(x, tuple),
    )


def test_projection_matches_the_dense_matrix_in_numpy():
    rng = np.random.default_rng(0)
    tree = tree_of(rng, batch=3)
    matrix = np.asarray(projection.dense_matrix(jax.tree.map(lambda x: x[0], tree), 7, DIM))
    flat = np.concatenate([leaf.reshape(3, -1) for leaf in jax.tree.leaves(tree)], axis=1)
    expected = flat.astype(np.float64) @ matrix.astype(np.float64)
    actual = np.asarray(jax.jit(lambda t: projection.project(t, 7, DIM))(tree))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    assert set(np.unique(matrix * np.sqrt(DIM))) == {-1.0, 1.0}
    # Unbatched = one row of the batched projection.
    one = projection.project(jax.tree.map(lambda x: x[1], tree), 7, DIM, batched=False)
    np.testing.assert_allclose(np.asarray(one), actual[1], rtol=1e-5, atol=1e-5)


def test_signs_depend_on_seed_leaf_and_block():
    key = jax.random.key(0)
    block0, block1 = (np.asarray(projection.sign_block(key, b, DIM)) for b in (0, 1))
    other = np.asarray(projection.sign_block(jax.random.key(1), 0, DIM))
    assert abs(block0.mean()) < 0.01  # 4096 * 64 fair signs: sd 0.002
    assert (block0 != block1).mean() > 0.45 and (block0 != other).mean() > 0.45


def test_projection_preserves_norms_within_the_jl_bound():
    dim, eps, vectors = 1024, 0.3, 20
    assert projection.jl_failure_probability(dim, eps) < 1e-7
    x = np.random.default_rng(1).standard_normal((vectors, 3 * projection.BLOCK_SIZE))
    projected = np.asarray(projection.project({"w": jnp.asarray(x, jnp.float32)}, 3, dim))
    ratios = (projected**2).sum(1) / (x**2).sum(1)
    assert np.all(np.abs(ratios - 1) < eps), ratios
    # A real random projection: the ratios spread by about sqrt(2 / d), not 0.
    assert 0.01 < ratios.std() < 0.1


def test_check_dim_names_the_flag():
    with pytest.raises(projection.ProjectionError, match="--dim"):
        projection.check_dim(100)


@pytest.fixture(scope="module")
def proxy(teacher):
    config, params, tokenizer = teacher
    renderer = features_lib.sft_renderer(tokenizer, features_lib.RenderSettings())
    batch = features_lib.render_examples(RECORDS, renderer, MAX_LENGTH, tokenizer.pad_id)
    return config, params, tokenizer, batch


def test_rendering_is_the_sft_tasks(proxy):
    _, _, tokenizer, batch = proxy
    task = data_lib.SftTask(
        data_lib.SftTask.Config(prompt_field="question", response_field="answer"), tokenizer
    )
    document = task(RECORDS[0])
    length = len(document["tokens"])
    assert length < MAX_LENGTH and not batch.truncated.any()
    for name in ("tokens", "targets", "loss_mask"):
        np.testing.assert_array_equal(getattr(batch, name)[0, :length], document[name])
    assert not batch.loss_mask[0, length:].any()
    cut = features_lib.render_examples(RECORDS[:1], task, 8, tokenizer.pad_id)
    assert cut.truncated.all() and not cut.valid.any()  # the response starts after token 8


def test_example_loss_is_the_mean_response_nll_in_numpy(proxy):
    config, params, _, batch = proxy
    logits = np.asarray(models.forward(config, params, batch.tokens), np.float64)
    logits -= logits.max(-1, keepdims=True)
    logprobs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = np.take_along_axis(logprobs, batch.targets[..., None], -1)[..., 0]
    expected = -(target * batch.loss_mask).sum(1) / batch.loss_mask.sum(1)
    loss = jax.jit(lambda p, t, y, m: features_lib.example_loss(config, p, t, y, m))
    actual = [float(loss(params, *(a[i] for a in arrays(batch)))) for i in range(len(RECORDS))]
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def arrays(batch):
    return batch.tokens, batch.targets, batch.loss_mask


def test_per_example_gradients_equal_a_loop_of_jax_grad(proxy):
    config, params, _, batch = proxy
    batched = jax.jit(lambda p, t, y, m: features_lib.per_example_gradients(config, p, t, y, m))(
        params, *arrays(batch)
    )
    single = jax.jit(jax.grad(lambda p, t, y, m: features_lib.example_loss(config, p, t, y, m)))
    for i in range(len(RECORDS)):
        looped = single(params, *(a[i] for a in arrays(batch)))
        for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(looped)):
            np.testing.assert_allclose(np.asarray(got[i]), np.asarray(want), atol=1e-6, rtol=0)
    assert max(float(jnp.abs(leaf).max()) for leaf in jax.tree.leaves(batched)) > 1e-3


def features_in_batches(config, params, batch, size, rows):
    parts = []
    for start in range(0, len(RECORDS), size):
        part = features_lib.ExampleBatch(
            *(a[start : start + size] for a in arrays(batch)), batch.truncated[start:][:size]
        )
        parts.append(
            features_lib.gradient_features(config, params, part, seed=3, dim=DIM, rows=rows)
        )
    return np.concatenate(parts)


def test_features_do_not_depend_on_batch_size_or_mesh(proxy, teacher_dir):
    config, params, _, batch = proxy
    whole = features_in_batches(config, params, batch, len(RECORDS), 8)  # one padded row
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, rtol=1e-5)
    assert np.abs(whole @ whole.T - np.eye(len(RECORDS))).max() > 0.01  # not trivially equal
    in_twos = features_in_batches(config, params, batch, 2, 2)
    np.testing.assert_allclose(in_twos, whole, atol=1e-6, rtol=0)
    for shape in [(8, 1, 1), (1, 2, 4)]:  # data parallel; fsdp x tensor sharded params
        mesh = parallel.make_mesh(shape)
        _, sharded = models.load_hf_checkpoint(teacher_dir, mesh=mesh)
        assert features_lib.batch_rows(len(RECORDS), mesh) == 8
        on_mesh = features_in_batches(config, sharded, batch, len(RECORDS), 8)
        np.testing.assert_allclose(on_mesh, whole, atol=1e-5, rtol=0)


def test_an_example_without_response_tokens_gets_a_zero_row(proxy):
    config, params, _, batch = proxy
    empty = features_lib.ExampleBatch(
        batch.tokens[:2],
        batch.targets[:2],
        batch.loss_mask[:2] * np.array([[1], [0]]),
        batch.truncated[:2],
    )
    out = features_lib.gradient_features(config, params, empty, seed=3, dim=DIM, rows=2)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, rel=1e-5)
    assert not out[1].any() and list(empty.valid) == [True, False]
