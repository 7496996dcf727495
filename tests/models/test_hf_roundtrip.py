"""save → transformers load → same logits; load → save → load is exact; config layouts."""

import json

import jax
import numpy as np
import pytest
import torch
import transformers

from reasonrl import models
from tests.helpers import hf_logits, read_json


def _tokens(vocab, shape=(2, 24), seed=0):
    return np.random.RandomState(seed).randint(0, vocab, shape).astype(np.int32)


def _assert_params_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("kind", ["qwen2", "qwen3", "llama", "llama_tied"])
def test_load_save_load_is_exact_and_transformers_reads_our_export(kind, hf_checkpoints, tmp_path):
    _, path = hf_checkpoints[kind]
    config, params = models.load_hf_checkpoint(path)
    exported = models.save_hf_checkpoint(config, params, tmp_path / "export")
    config2, params2 = models.load_hf_checkpoint(exported)
    assert config2 == config
    _assert_params_equal(params, params2)

    reloaded = transformers.AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32)
    tokens = _tokens(config.vocab_size)
    np.testing.assert_allclose(
        hf_logits(reloaded, tokens),
        np.asarray(models.forward(config, params, tokens)),
        atol=1e-4,
        rtol=0,
    )


@pytest.mark.parametrize("name", ["tiny-qwen2", "tiny-qwen3", "tiny-llama"])
def test_fresh_params_export_to_transformers(name, tmp_path):
    config = models.get_preset(name)
    params = models.init_params(config, jax.random.key(1))
    models.save_hf_checkpoint(config, params, tmp_path)
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert type(hf_model).__name__ == models.ARCHITECTURES[config.architecture]["hf_class"]
    tokens = _tokens(config.vocab_size)
    np.testing.assert_allclose(
        hf_logits(hf_model, tokens),
        np.asarray(models.forward(config, params, tokens)),
        atol=1e-4,
        rtol=0,
    )


def test_multi_file_checkpoint_with_index(hf_checkpoints, tmp_path):
    """Both directions: transformers' sharded save is read; our sharded save is read by both."""
    hf_model, path = hf_checkpoints["qwen3"]
    hf_model.save_pretrained(tmp_path / "hf_sharded", max_shard_size="100KB")
    assert (tmp_path / "hf_sharded" / "model.safetensors.index.json").exists()
    config, params = models.load_hf_checkpoint(tmp_path / "hf_sharded")
    _, reference = models.load_hf_checkpoint(path)
    _assert_params_equal(params, reference)

    ours = models.save_hf_checkpoint(config, params, tmp_path / "ours", max_shard_bytes=100_000)
    index = read_json(ours / "model.safetensors.index.json")
    assert len(set(index["weight_map"].values())) > 1
    _assert_params_equal(models.load_hf_checkpoint(ours)[1], params)
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(ours, dtype=torch.float32)
    tokens = _tokens(config.vocab_size)
    np.testing.assert_allclose(hf_logits(reloaded, tokens), hf_logits(hf_model, tokens), atol=1e-5)


def test_bf16_export_is_bf16_on_disk(hf_checkpoints, tmp_path):
    import jax.numpy as jnp
    from safetensors import safe_open

    _, path = hf_checkpoints["llama"]
    config, params = models.load_hf_checkpoint(path)
    out = models.save_hf_checkpoint(config, params, tmp_path / "bf16", dtype=jnp.bfloat16)
    assert read_json(out / "config.json")["torch_dtype"] == "bfloat16"
    with safe_open(out / "model.safetensors", "np") as f:
        assert f.get_slice("model.embed_tokens.weight").get_dtype() == "BF16"
    config16, params16 = models.load_hf_checkpoint(out, dtype=jnp.bfloat16)
    expected = params["layers"]["mlp"]["up_kernel"].astype(jnp.bfloat16)
    np.testing.assert_array_equal(
        np.asarray(params16["layers"]["mlp"]["up_kernel"]), np.asarray(expected)
    )


def test_save_replaces_existing_export_atomically(hf_checkpoints, tmp_path):
    _, path = hf_checkpoints["qwen2"]
    config, params = models.load_hf_checkpoint(path)
    target = tmp_path / "export"
    models.save_hf_checkpoint(config, params, target)
    (target / "stale.txt").write_text("from an older export")
    doubled = jax.tree.map(lambda x: x * 2, params)
    models.save_hf_checkpoint(config, doubled, target)
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"], "temporary dirs left behind"
    _assert_params_equal(models.load_hf_checkpoint(target)[1], doubled)


def _legacy_config(modern: dict) -> dict:
    """The transformers-4 layout that hub checkpoints carry: rope_theta + rope_scaling."""
    legacy = dict(modern)
    rope = legacy.pop("rope_parameters")
    legacy["rope_theta"] = rope.pop("rope_theta")
    rope_type = rope.pop("rope_type")
    legacy["rope_scaling"] = None if rope_type == "default" else {"type": rope_type, **rope}
    return legacy


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_transformers4_and_current_config_layouts_agree(kind, hf_checkpoints):
    _, path = hf_checkpoints[kind]
    modern = read_json(path / "config.json")
    assert "rope_parameters" in modern  # what the installed transformers writes
    from_modern = models.ModelConfig.from_hf_dict(modern)
    from_legacy = models.ModelConfig.from_hf_dict(_legacy_config(modern))
    assert from_modern == from_legacy
    if kind == "llama":
        assert from_modern.rope_scaling == models.RopeScaling("llama3", 8.0, 1.0, 4.0, 32)


@pytest.mark.parametrize("name", sorted(models.PRESETS))
def test_presets_survive_hf_config_round_trip(name):
    config = models.get_preset(name)
    assert models.ModelConfig.from_hf_dict(json.loads(json.dumps(config.to_hf_dict()))) == config
