"""Hugging Face BERT checkpoints (`BertModel` layout, with or without a "bert." prefix) -> the
params of `reasonrl.models.bert`, placed directly onto a mesh as the decoder's loader does
(`reasonrl.models.hf_checkpoint`: every device reads only its shard, tensors checked for
presence, shape and finiteness, errors name the file and tensor)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax
import jax.numpy as jnp
from absl import logging
from jax.sharding import Mesh, SingleDeviceSharding

from reasonrl.models.bert import BertConfig, bert_param_shapes, bert_param_shardings
from reasonrl.models.hf_checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    TensorSpec,
    _open_all,
    _place,
    _read_json,
    _weight_files,
)
from reasonrl.parallel.rules import DEFAULT_RULES, Rules

# Our parameter path -> (HF tensor name, layout), as in hf_checkpoint: per-layer entries omit
# the leading "layers" and the "encoder.layer.{i}." prefix; an int layout k is a linear kernel
# whose first k dims are inputs, stored by HF as [prod(outputs), prod(inputs)].
_GLOBAL_TENSORS = {
    ("word_embeddings",): ("embeddings.word_embeddings.weight", "same"),
    ("position_embeddings",): ("embeddings.position_embeddings.weight", "same"),
    ("token_type_embeddings",): ("embeddings.token_type_embeddings.weight", "same"),
    ("embedding_norm", "scale"): ("embeddings.LayerNorm.weight", "same"),
    ("embedding_norm", "bias"): ("embeddings.LayerNorm.bias", "same"),
}
_LAYER_TENSORS = {
    ("query", "kernel"): ("attention.self.query.weight", 1),
    ("query", "bias"): ("attention.self.query.bias", "flat"),
    ("key", "kernel"): ("attention.self.key.weight", 1),
    ("key", "bias"): ("attention.self.key.bias", "flat"),
    ("value", "kernel"): ("attention.self.value.weight", 1),
    ("value", "bias"): ("attention.self.value.bias", "flat"),
    ("attention_output", "kernel"): ("attention.output.dense.weight", 2),
    ("attention_output", "bias"): ("attention.output.dense.bias", "same"),
    ("attention_norm", "scale"): ("attention.output.LayerNorm.weight", "same"),
    ("attention_norm", "bias"): ("attention.output.LayerNorm.bias", "same"),
    ("intermediate", "kernel"): ("intermediate.dense.weight", 1),
    ("intermediate", "bias"): ("intermediate.dense.bias", "same"),
    ("output", "kernel"): ("output.dense.weight", 1),
    ("output", "bias"): ("output.dense.bias", "same"),
    ("output_norm", "scale"): ("output.LayerNorm.weight", "same"),
    ("output_norm", "bias"): ("output.LayerNorm.bias", "same"),
}
# Tensors of a BERT checkpoint that the encoder does not use, not worth a warning.
_UNUSED_PREFIXES = ("pooler.", "embeddings.position_ids", "cls.")


def read_bert_config(path: str | os.PathLike) -> BertConfig:
    """The BertConfig of a Hugging Face checkpoint directory (ConfigError names config.json)."""
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: a Hugging Face BERT directory needs config.json"
        )
    return BertConfig.from_hf_dict(_read_json(config_path), source=str(config_path))


def bert_tensor_specs(config: BertConfig, prefix: str = "") -> list[TensorSpec]:
    """One TensorSpec per parameter, in params-tree order; HF names start with `prefix`."""
    specs = []
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(bert_param_shapes(config))[0]:
        path = tuple(k.key for k in key_path)
        if path[0] == "layers":
            name, layout = _LAYER_TENSORS[path[1:]]
            hf_name = f"{prefix}encoder.layer.{{layer}}.{name}"
            specs.append(TensorSpec(path, hf_name, layout, leaf.shape[1:], config.num_layers))
        else:
            name, layout = _GLOBAL_TENSORS[path]
            specs.append(TensorSpec(path, prefix + name, layout, leaf.shape, None))
    return specs


def _check_tensors(specs: list[TensorSpec], locations: dict, handles, path: Path) -> None:
    """Every tensor exists with its shape; warns about tensors the encoder does not read."""
    needed = set()
    for spec in specs:
        for name in spec.hf_names():
            needed.add(name)
            if name not in locations:
                raise CheckpointError(
                    f"{path}: tensor {name!r} is missing (needed for {'/'.join(spec.path)})"
                )
            found = tuple(handles[locations[name]].get_slice(name).get_shape())
            if found != spec.hf_shape:
                raise CheckpointError(
                    f"{locations[name]}: tensor {name!r} has shape {found}, expected "
                    f"{spec.hf_shape} from {CONFIG_FILE}"
                )
    unused = sorted(
        name
        for name in locations
        if name not in needed and not name.removeprefix("bert.").startswith(_UNUSED_PREFIXES)
    )
    if unused:
        logging.warning("%s: %d tensors are not used, e.g. %s", path, len(unused), unused[:5])


def load_bert_checkpoint(
    path: str | os.PathLike,
    *,
    mesh: Mesh | None = None,
    dtype=jnp.float32,
    rules: Rules = DEFAULT_RULES,
) -> tuple[BertConfig, dict]:
    """Reads a Hugging Face BERT directory (config.json + safetensors) into (config, params).

    Args:
      mesh: place every parameter in its sharding on this mesh; default: the first device.
      dtype: compute dtype recorded in the config (params are stored in float32).

    Raises:
      FileNotFoundError: no directory, config.json or safetensors file.
      ConfigError: not a supported BERT config.  CheckpointError: a missing, mis-shaped or
        non-finite tensor, or an unreadable file (each named).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"encoder directory {path} does not exist")
    config = dataclasses.replace(read_bert_config(path), dtype=jnp.dtype(dtype).name)
    locations = _weight_files(path)
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in locations else ""
    specs = bert_tensor_specs(config, prefix)
    if mesh is None:
        device = SingleDeviceSharding(jax.local_devices()[0])
        shardings = jax.tree.map(lambda _: device, bert_param_shapes(config))
    else:
        shardings = bert_param_shardings(config, mesh, rules)
    files = {locations[n] for spec in specs for n in spec.hf_names() if n in locations}
    with _open_all(files) as handles:
        _check_tensors(specs, locations, handles, path)
        leaves = [
            _place(spec, sharding, handles, locations, jnp.float32)
            for spec, sharding in zip(specs, jax.tree.leaves(shardings))
        ]
    return config, jax.tree.unflatten(jax.tree.structure(bert_param_shapes(config)), leaves)
