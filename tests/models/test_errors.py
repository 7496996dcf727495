"""Bad input gets a clear error naming what is wrong."""

import json
import shutil

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from reasonrl import models, parallel


@pytest.fixture
def checkpoint_copy(hf_checkpoints, tmp_path):
    _, path = hf_checkpoints["qwen2"]
    target = tmp_path / "ckpt"
    shutil.copytree(path, target)
    return target


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.load_hf_checkpoint(tmp_path / "nope")


def test_missing_config_json(checkpoint_copy):
    (checkpoint_copy / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        models.load_hf_checkpoint(checkpoint_copy)


def test_unknown_architecture(checkpoint_copy):
    config = json.loads((checkpoint_copy / "config.json").read_text())
    config.update(model_type="mistral", architectures=["MistralForCausalLM"])
    (checkpoint_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(models.ConfigError, match=r"model_type='mistral'.*supported.*qwen2"):
        models.load_hf_checkpoint(checkpoint_copy)


def test_unsupported_rope_type(checkpoint_copy):
    config = json.loads((checkpoint_copy / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4}
    (checkpoint_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(models.ConfigError, match="'yarn' is not supported"):
        models.load_hf_checkpoint(checkpoint_copy)


def test_invalid_json_names_file_and_line(checkpoint_copy):
    (checkpoint_copy / "config.json").write_text('{\n  "model_type": "qwen2",\n  oops\n}')
    with pytest.raises(models.CheckpointError, match=r"config\.json: invalid JSON at line 3"):
        models.load_hf_checkpoint(checkpoint_copy)


def test_no_weights(checkpoint_copy):
    (checkpoint_copy / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors files"):
        models.load_hf_checkpoint(checkpoint_copy)


def _rewrite_weights(directory, edit):
    tensors = load_file(directory / "model.safetensors")
    edit(tensors)
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


def test_missing_tensor_is_named(checkpoint_copy):
    _rewrite_weights(checkpoint_copy, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(
        models.CheckpointError, match=r"'model\.layers\.1\.mlp\.up_proj\.weight' is missing"
    ):
        models.load_hf_checkpoint(checkpoint_copy)


def test_misshaped_tensor_names_key_and_both_shapes(checkpoint_copy):
    def edit(tensors):
        tensors["model.layers.0.self_attn.k_proj.weight"] = np.zeros((33, 64), np.float32)

    _rewrite_weights(checkpoint_copy, edit)
    with pytest.raises(models.CheckpointError) as err:
        models.load_hf_checkpoint(checkpoint_copy)
    message = str(err.value)
    assert "model.layers.0.self_attn.k_proj.weight" in message
    assert "(33, 64)" in message and "(32, 64)" in message


@pytest.mark.parametrize("bad_id", [-1, 256, 10_000])
def test_tokens_out_of_vocabulary(hf_checkpoints, bad_id):
    config, params = models.load_hf_checkpoint(hf_checkpoints["qwen2"][1])
    tokens = np.zeros((2, 5), np.int32)
    tokens[1, 3] = bad_id
    with pytest.raises(models.InputError, match=rf"token id {bad_id} at .*\(1, 3\).*\[0, 256\)"):
        models.forward(config, params, tokens)


def test_token_shape_and_dtype_errors(hf_checkpoints):
    config, params = models.load_hf_checkpoint(hf_checkpoints["qwen2"][1])
    with pytest.raises(models.InputError, match=r"\[batch, length\]"):
        models.forward(config, params, np.zeros((5,), np.int32))
    with pytest.raises(models.InputError, match="integers"):
        models.forward(config, params, np.zeros((1, 5), np.float32))
    with pytest.raises(models.InputError, match="positions shape"):
        models.forward(config, params, np.zeros((1, 5), np.int32), positions=np.zeros((1, 4)))


@pytest.mark.parametrize(
    "shape, message",
    [
        ((3, 1, 1), "needs 3 devices but 8 are available"),
        ((3, -1, 1), "do not divide the 8 available devices"),
        ((-1, -1, 1), "at most one axis may be -1"),
        ((0, 8, 1), "sizes are positive ints or -1"),
    ],
)
def test_mesh_that_does_not_fit_devices(shape, message):
    assert jax.device_count() == 8
    with pytest.raises(parallel.MeshError, match=message):
        parallel.make_mesh(shape)


def test_batch_not_divisible_by_mesh(hf_checkpoints):
    mesh = parallel.make_mesh((2, 2, 2))
    config, params = models.load_hf_checkpoint(hf_checkpoints["qwen2"][1], mesh=mesh)
    with pytest.raises(models.InputError, match="batch size 3 is not divisible by 4"):
        models.forward(config, params, np.zeros((3, 8), np.int32))


def test_invalid_model_config_fields():
    with pytest.raises(
        models.ConfigError, match="num_heads=6 must be a multiple of num_kv_heads=4"
    ):
        models.get_preset("tiny-qwen3", num_heads=6, num_kv_heads=4)
    with pytest.raises(models.ConfigError, match="dtype='fp8'"):
        models.get_preset("tiny-qwen3", dtype="fp8")


def test_error_types_are_project_errors():
    from reasonrl.errors import ReasonRLError
    from reasonrl.objectives.registry import ObjectiveOptionError

    for error_type in (
        models.CheckpointError,
        models.ConfigError,
        models.InputError,
        parallel.MeshError,
        ObjectiveOptionError,
    ):
        assert issubclass(error_type, ReasonRLError) and issubclass(error_type, ValueError)


def test_unsupported_architecture_names_the_file_and_the_supported_ones(checkpoint_copy):
    config = json.loads((checkpoint_copy / "config.json").read_text())
    config.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (checkpoint_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(models.ConfigError) as err:
        models.load_hf_checkpoint(checkpoint_copy)
    message = str(err.value)
    assert message.startswith(f"{checkpoint_copy / 'config.json'}: model_type='gpt2'")
    assert "GPT2LMHeadModel" in message
    for supported in (
        "qwen2 (Qwen2ForCausalLM)",
        "qwen3 (Qwen3ForCausalLM)",
        "llama (LlamaForCausalLM)",
    ):
        assert supported in message


@pytest.mark.parametrize("keep", [0.5, 0.001])
def test_truncated_safetensors_names_the_file(checkpoint_copy, keep):
    weights = checkpoint_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: int(weights.stat().st_size * keep)])
    with pytest.raises(
        models.CheckpointError,
        match=rf"^{weights}: not a readable safetensors "
        r"file .*truncated",
    ):
        models.load_hf_checkpoint(checkpoint_copy)


def test_truncated_shard_of_a_sharded_checkpoint_names_the_file(hf_checkpoints, tmp_path):
    config, params = models.load_hf_checkpoint(hf_checkpoints["qwen2"][1])
    sharded = models.save_hf_checkpoint(
        config, params, tmp_path / "sharded", max_shard_bytes=100_000
    )
    shard = sorted(sharded.glob("model-*.safetensors"))[-1]
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(models.CheckpointError, match=rf"^{shard}: not a readable safetensors"):
        models.load_hf_checkpoint(sharded)


@pytest.mark.parametrize(
    "name, value",
    [("model.layers.1.mlp.up_proj.weight", np.nan), ("model.embed_tokens.weight", -np.inf)],
)
def test_non_finite_weights_name_the_tensor_and_file(checkpoint_copy, name, value):
    def edit(tensors):
        tensors[name][3, 5] = value

    _rewrite_weights(checkpoint_copy, edit)
    mesh = parallel.make_mesh((2, 2, 2))  # every device reads its shard: one error all the same
    with pytest.raises(
        models.CheckpointError,
        match=rf"^{checkpoint_copy / 'model.safetensors'}: tensor '{name}' holds 1 "
        r"non-finite values \(NaN or inf\), the first at index \(3, 5\)",
    ):
        models.load_hf_checkpoint(checkpoint_copy, mesh=mesh)


def test_invalid_index_names_the_file(checkpoint_copy):
    index = checkpoint_copy / "model.safetensors.index.json"
    index.write_text('{"weight_map": ')
    with pytest.raises(models.CheckpointError, match=rf"^{index}: invalid JSON at line 1"):
        models.load_hf_checkpoint(checkpoint_copy)
    index.write_text('{"metadata": {}}')
    with pytest.raises(models.CheckpointError, match=rf"^{index}: no 'weight_map'"):
        models.load_hf_checkpoint(checkpoint_copy)
