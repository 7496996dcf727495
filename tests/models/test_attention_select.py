"""Which attention implementation runs where, config errors naming the field, and the kernel
wrappers (splash in the Pallas interpreter on CPU; cuDNN only where a GPU exists)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl import models, parallel
from reasonrl.models.attention import (
    cudnn_attention,
    dense_attention,
    select_implementation,
    splash_attention,
)
from reasonrl.models.config import ConfigError
from reasonrl.models.layers import ActivationSharding

BF16 = dict(dtype="bfloat16")


def _config(**overrides):
    return models.get_preset("tiny-qwen3", **overrides)


def _choose(config, backend, length, *, slots=0):
    return select_implementation(
        config, backend, query_len=length, key_len=slots + length, has_cache=slots > 0
    )


def test_cpu_default_is_blockwise_beyond_one_block():
    config = _config(attention_q_block=128, attention_kv_block=128)
    assert config.attention == "auto"
    assert _choose(config, "cpu", 4096) == "blockwise"
    assert _choose(config, "cpu", 129) == "blockwise"
    assert _choose(config, "cpu", 128) == "dense"  # one tile: the same math, no loop


def test_decode_and_short_prefill_use_dense_long_prefill_blockwise():
    config = _config(attention_q_block=128)
    for backend in ("cpu", "gpu", "tpu"):
        assert _choose(config.replace(**BF16), backend, 1, slots=8192) == "dense"
        assert _choose(config, backend, 128, slots=128) == "dense"
        assert _choose(config, backend, 1024, slots=1024) == "blockwise"


@pytest.mark.parametrize(
    "backend, overrides, length, expected",
    [
        ("gpu", BF16, 2048, "cudnn"),
        ("gpu", dict(dtype="float16"), 2048, "cudnn"),
        ("gpu", {}, 2048, "blockwise"),  # cuDNN flash attention has no float32
        ("gpu", dict(**BF16, head_dim=12), 2048, "blockwise"),  # not a multiple of 8
        ("tpu", {}, 2048, "splash"),
        ("tpu", {}, 1000, "blockwise"),  # not a multiple of 128
        ("tpu", dict(attention_kv_block=192), 2048, "blockwise"),  # tile not 128-aligned
        ("cpu", BF16, 2048, "blockwise"),
        ("tpu", dict(attention="blockwise"), 2048, "blockwise"),
        ("gpu", dict(attention="dense", **BF16), 2048, "dense"),
    ],
)
def test_auto_picks_the_kernel_of_each_backend(backend, overrides, length, expected):
    assert _choose(_config(**overrides), backend, length) == expected


@pytest.mark.parametrize(
    "overrides, backend, length, message",
    [
        (dict(attention="cudnn", **BF16), "cpu", 256, "attention='cudnn' needs the 'gpu'"),
        (dict(attention="splash"), "gpu", 256, "attention='splash' needs the 'tpu'"),
        (dict(attention="splash"), "tpu", 200, "attention='splash' cannot run: sequence length"),
    ],
)
def test_forced_kernel_that_cannot_run_names_the_field(overrides, backend, length, message):
    with pytest.raises(ConfigError, match=message):
        _choose(_config(**overrides), backend, length)


def test_forced_kernel_still_decodes_with_the_xla_paths():
    config = _config(attention="splash", attention_q_block=128)
    assert _choose(config, "tpu", 1, slots=4096) == "dense"
    assert _choose(config, "tpu", 512, slots=512) == "blockwise"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(attention="flash"), "attention='flash'; choose from"),
        (dict(attention_q_block=0), "attention_q_block must be a positive int"),
        (dict(attention_kv_block=64.0), "attention_kv_block must be a positive int"),
        (dict(remat="some"), "remat='some'; choose from"),
        (dict(attention="cudnn"), "attention='cudnn' needs dtype"),
        (dict(attention="cudnn", head_dim=12, **BF16), "head_dim a multiple of 8"),
    ],
)
def test_bad_attention_and_remat_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _config(**overrides)


def test_boolean_remat_still_works():
    assert _config(remat=True).remat == "full" and _config(remat=False).remat == "none"
    assert _config(remat="save_matmul_outputs").remat == "save_matmul_outputs"


def _kernel_inputs(batch=2, kv_heads=2, groups=2, length=256, dim=64):
    rng = np.random.RandomState(0)
    q = jnp.asarray(rng.randn(batch, kv_heads, groups, length, dim), jnp.float32)
    k, v = (jnp.asarray(x, jnp.float32) for x in rng.randn(2, batch, kv_heads, length, dim))
    cut = 100
    positions = np.tile(np.arange(length), (batch, 1))
    positions[0, cut:] -= cut
    segments = np.ones((batch, length))
    segments[0, cut:] = 2
    segments[1, -9:] = 0
    return q, k, v, jnp.asarray(positions, jnp.int32), jnp.asarray(segments, jnp.int32)


@pytest.mark.parametrize("sharded", [False, True])
def test_splash_kernel_equals_dense_in_the_pallas_interpreter(sharded):
    """The TPU kernel run by the Pallas interpreter on CPU: packed + padded rows, GQA, and the
    shard_map over an 8-device mesh (batch over data, heads over tensor)."""
    q, k, v, positions, segments = _kernel_inputs()
    scale = 0.125
    sharding = None
    if sharded:
        sharding = ActivationSharding(parallel.make_mesh(dict(data=2, fsdp=2, tensor=2)))
    visible = (segments != 0)[:, None, None, :, None]

    def kernel(q, k, v):
        out = splash_attention(
            q,
            k,
            v,
            segments,
            segments,
            scale=scale,
            q_block=128,
            kv_block=128,
            sharding=sharding,
            interpret=True,
        )
        return out * visible

    def reference(q, k, v):
        return (
            dense_attention(q, k, v, positions, segments, positions, segments, scale=scale)
            * visible
        )

    np.testing.assert_allclose(jax.jit(kernel)(q, k, v), reference(q, k, v), atol=1e-5, rtol=0)
    if not sharded:  # the kernel's own backward (dq and dkv kernels)
        grads = [
            jax.grad(lambda *x, f=f: f(*x).sum(), argnums=(0, 1, 2)) for f in (kernel, reference)
        ]
        for got, want in zip(jax.jit(grads[0])(q, k, v), grads[1](q, k, v)):
            np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs a GPU")
def test_cudnn_kernel_equals_dense_on_gpu():
    q, k, v, positions, segments = _kernel_inputs()
    q, k, v = (x.astype(jnp.bfloat16) for x in (q, k, v))
    args = (positions, segments, positions, segments)
    out = jax.jit(lambda q, k, v: cudnn_attention(q, k, v, *args, scale=0.125))(q, k, v)
    ref = dense_attention(q, k, v, *args, scale=0.125)
    visible = (segments != 0)[:, None, None, :, None]
    np.testing.assert_allclose(
        (out * visible).astype(np.float32), (ref * visible).astype(np.float32), atol=2e-2
    )
