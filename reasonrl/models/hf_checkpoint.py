"""Hugging Face safetensors checkpoints: load directly onto a mesh, save for transformers.

Loading reads `config.json` and one or many `*.safetensors` files (with
`model.safetensors.index.json`), checks every tensor's presence and shape before anything is
placed, then builds each parameter with `jax.make_array_from_callback`: every device receives only
its own shard, read from the memory-mapped file. The whole model is never gathered on one device,
and on multi-host jobs each host reads only what its devices hold. Each tensor is checked on the
host, as it is read, to hold only finite values. Every problem with the files (an unsupported
architecture, invalid JSON, a truncated or corrupt safetensors file, a missing, mis-shaped or
non-finite tensor) is a `ConfigError` or `CheckpointError` naming the file.

Saving writes `config.json` and safetensors shards that
`transformers.AutoModelForCausalLM.from_pretrained` loads to the same logits. The directory is
written beside the target and renamed into place, so a crash mid-save leaves the previous export
intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, SingleDeviceSharding
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from reasonrl.errors import ReasonRLError
from reasonrl.models.api import Params, param_shapes, param_shardings
from reasonrl.models.config import ModelConfig
from reasonrl.parallel.rules import DEFAULT_RULES, Rules

CONFIG_FILE = "config.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"

# Our parameter path -> (HF tensor name, layout). Per-layer entries omit the leading "layers"
# and the HF name the "model.layers.{i}." prefix. Layouts:
#   "same": identical array;  "flat": HF stores it flattened to 1-D;
#   k (int): a linear kernel whose first k dims are inputs, stored by HF as
#            [prod(output dims), prod(input dims)].
_GLOBAL_TENSORS = {
    ("embedding",): ("model.embed_tokens.weight", "same"),
    ("final_norm", "scale"): ("model.norm.weight", "same"),
    ("lm_head",): ("lm_head.weight", 1),
}
_LAYER_TENSORS = {
    ("input_norm", "scale"): ("input_layernorm.weight", "same"),
    ("post_attention_norm", "scale"): ("post_attention_layernorm.weight", "same"),
    ("attn", "q_kernel"): ("self_attn.q_proj.weight", 1),
    ("attn", "k_kernel"): ("self_attn.k_proj.weight", 1),
    ("attn", "v_kernel"): ("self_attn.v_proj.weight", 1),
    ("attn", "o_kernel"): ("self_attn.o_proj.weight", 2),
    ("attn", "q_bias"): ("self_attn.q_proj.bias", "flat"),
    ("attn", "k_bias"): ("self_attn.k_proj.bias", "flat"),
    ("attn", "v_bias"): ("self_attn.v_proj.bias", "flat"),
    ("attn", "o_bias"): ("self_attn.o_proj.bias", "same"),
    ("attn", "q_norm", "scale"): ("self_attn.q_norm.weight", "same"),
    ("attn", "k_norm", "scale"): ("self_attn.k_norm.weight", "same"),
    ("mlp", "gate_kernel"): ("mlp.gate_proj.weight", 1),
    ("mlp", "up_kernel"): ("mlp.up_proj.weight", 1),
    ("mlp", "down_kernel"): ("mlp.down_proj.weight", 1),
}
# Tensors some checkpoints carry that the model derives instead.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


class CheckpointError(ReasonRLError, ValueError):
    """A checkpoint whose contents do not match what the model needs."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """How one of our parameters is stored in a Hugging Face checkpoint."""

    path: tuple[str, ...]  # in our params tree
    hf_name: str  # may contain "{layer}"
    layout: str | int
    shape: tuple[int, ...]  # ours, per layer (without the leading L for stacked params)
    num_layers: int | None  # None for unstacked params

    @property
    def hf_shape(self) -> tuple[int, ...]:
        if self.layout == "same":
            return self.shape
        if self.layout == "flat":
            return (math.prod(self.shape),)
        k = int(self.layout)
        return (math.prod(self.shape[k:]), math.prod(self.shape[:k]))

    def hf_names(self) -> list[str]:
        if self.num_layers is None:
            return [self.hf_name]
        return [self.hf_name.format(layer=i) for i in range(self.num_layers)]

    def to_ours(self, hf_array: np.ndarray) -> np.ndarray:
        if isinstance(self.layout, int):
            hf_array = hf_array.T
        return hf_array.reshape(self.shape)

    def to_hf(self, ours: np.ndarray) -> np.ndarray:
        if isinstance(self.layout, int):
            return np.ascontiguousarray(ours.reshape(self.hf_shape[::-1]).T)
        return ours.reshape(self.hf_shape)


def tensor_specs(config: ModelConfig) -> list[TensorSpec]:
    """One TensorSpec per parameter of `config`, in params-tree order."""
    specs = []
    flat = jax.tree_util.tree_flatten_with_path(param_shapes(config))[0]
    for key_path, leaf in flat:
        path = tuple(k.key for k in key_path)
        if path[0] == "layers":
            hf_name, layout = _LAYER_TENSORS[path[1:]]
            specs.append(
                TensorSpec(
                    path,
                    f"model.layers.{{layer}}.{hf_name}",
                    layout,
                    tuple(leaf.shape[1:]),
                    config.num_layers,
                )
            )
        else:
            hf_name, layout = _GLOBAL_TENSORS[path]
            specs.append(TensorSpec(path, hf_name, layout, tuple(leaf.shape), None))
    return specs


def read_hf_config(path: str | os.PathLike, *, dtype=jnp.float32) -> ModelConfig:
    """The ModelConfig of a Hugging Face checkpoint directory, with params stored in `dtype`."""
    config_path = Path(path) / CONFIG_FILE
    if not Path(path).is_dir():
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: a Hugging Face checkpoint directory needs config.json"
        )
    config = ModelConfig.from_hf_dict(_read_json(config_path), source=str(config_path))
    return config.replace(param_dtype=jnp.dtype(dtype).name)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None


def _safe_open(file: Path):
    """`safe_open(file)`; a file that is not a readable safetensors file (truncated by an
    interrupted copy, say) is a CheckpointError naming it."""
    try:
        return safe_open(file, framework="np")
    except SafetensorError as error:
        raise CheckpointError(
            f"{file}: not a readable safetensors file ({error}); is it truncated or corrupt?"
        ) from None


def _weight_files(path: Path) -> dict[str, Path]:
    """Tensor name -> file holding it: the index's map, else `model.safetensors` when present
    (other files beside it, e.g. a reward head, are not the model's), else every file."""
    index = path / INDEX_FILE
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: no 'weight_map' of tensor names to files")
        return {name: path / file for name, file in weight_map.items()}
    single = path / SINGLE_FILE
    files = [single] if single.is_file() else sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"no *.safetensors files in {path} (pytorch .bin checkpoints "
            f"are not read: convert them with transformers first)"
        )
    names = {}
    for file in files:
        with _safe_open(file) as handle:
            names.update({name: file for name in handle.keys()})
    return names


@contextlib.contextmanager
def _open_all(files: set[Path]) -> Iterator[dict[Path, object]]:
    with contextlib.ExitStack() as stack:
        yield {f: stack.enter_context(_safe_open(f)) for f in sorted(files)}


def _check_tensors(
    specs: list[TensorSpec], locations: dict[str, Path], handles, config: ModelConfig, path: Path
) -> None:
    """Every needed tensor exists with the right shape; warns about tensors nobody reads."""
    needed = set()
    for spec in specs:
        for name in spec.hf_names():
            needed.add(name)
            if name not in locations:
                raise CheckpointError(
                    f"{path}: tensor {name!r} is missing (needed for {'/'.join(spec.path)}; "
                    f"config {config.architecture}, {config.num_layers} layers)"
                )
            found = tuple(handles[locations[name]].get_slice(name).get_shape())
            if found != spec.hf_shape:
                raise CheckpointError(
                    f"{locations[name]}: tensor {name!r} has shape {found}, expected "
                    f"{spec.hf_shape} from {CONFIG_FILE}"
                )
    unused = sorted(
        n
        for n in locations
        if n not in needed
        and not n.endswith(_IGNORED_SUFFIXES)
        and not (n == "lm_head.weight" and config.tie_word_embeddings)
    )
    if unused:
        logging.warning(
            "%s: %d tensors are not used by the model, e.g. %s", path, len(unused), unused[:5]
        )


def load_hf_checkpoint(
    path: str | os.PathLike,
    *,
    mesh: Mesh | None = None,
    dtype=jnp.float32,
    rules: Rules = DEFAULT_RULES,
) -> tuple[ModelConfig, Params]:
    """Reads a Hugging Face checkpoint directory into (config, params).

    Args:
      path: directory with config.json and safetensors weights.
      mesh: place every parameter directly in its sharding on this mesh (any axis types: a
        `parallel.make_mesh` mesh, or `jax.make_mesh`'s Explicit one; the params live on it);
        default: the first local device.
      dtype: dtype the params are stored in (conversion happens per shard on the host).

    Raises:
      FileNotFoundError: no such directory, no config.json or no safetensors file.
      ConfigError: an unsupported architecture or configuration (naming config.json).
      CheckpointError: invalid JSON, a safetensors file that does not read (truncated), a
        missing or mis-shaped tensor (named, with both shapes) or one holding NaN or inf.
    """
    path = Path(path)
    config = read_hf_config(path, dtype=dtype)
    specs = tensor_specs(config)
    locations = _weight_files(path)
    target_dtype = jnp.dtype(dtype)
    if mesh is None:
        device = SingleDeviceSharding(jax.local_devices()[0])
        shardings = jax.tree.map(lambda _: device, param_shapes(config))
    else:
        shardings = param_shardings(config, mesh, rules)
    flat_shardings = jax.tree.leaves(shardings)

    files = {locations[name] for spec in specs for name in spec.hf_names() if name in locations}
    with _open_all(files) as handles:
        _check_tensors(specs, locations, handles, config, path)
        leaves = []
        for spec, sharding in zip(specs, flat_shardings):
            leaves.append(_place(spec, sharding, handles, locations, target_dtype))
    treedef = jax.tree.structure(param_shapes(config))
    return config, jax.tree.unflatten(treedef, leaves)


def _place(spec: TensorSpec, sharding, handles, locations, dtype) -> jax.Array:
    """Builds one parameter; each device's callback reads only the layers and slice it holds."""
    cache: dict[str, np.ndarray] = {}  # per-parameter: devices sharing a layer read it once

    def read(name: str) -> np.ndarray:
        if name not in cache:
            hf_array = handles[locations[name]].get_tensor(name)
            _check_finite(hf_array, name, locations[name])
            cache[name] = spec.to_ours(hf_array)
        return cache[name]

    if spec.num_layers is None:
        shape = spec.shape

        def callback(index):
            return np.asarray(read(spec.hf_name)[index], dtype=dtype)
    else:
        shape = (spec.num_layers,) + spec.shape
        names = spec.hf_names()

        def callback(index):
            layers = range(spec.num_layers)[index[0]]
            return np.stack([read(names[i])[index[1:]] for i in layers]).astype(dtype)

    return jax.make_array_from_callback(shape, sharding, callback)


def _check_finite(array: np.ndarray, name: str, file: Path) -> None:
    """Raises CheckpointError naming the tensor and file when `array` holds NaN or inf.

    One float64 sum, with no temporary the size of the tensor: a NaN or inf anywhere makes it
    non-finite, and no sum of finite float32 (or narrower) values overflows float64.
    """
    if np.isfinite(array.sum(dtype=np.float64)):
        return
    bad = ~np.isfinite(array)
    first = tuple(int(i) for i in np.unravel_index(np.argmax(bad), array.shape))
    raise CheckpointError(
        f"{file}: tensor {name!r} holds {int(bad.sum())} non-finite values "
        f"(NaN or inf), the first at index {first}"
    )


def _to_host(x: jax.Array) -> np.ndarray:
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(jax.device_get(x))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def save_hf_checkpoint(
    config: ModelConfig,
    params: Params,
    path: str | os.PathLike,
    *,
    dtype=None,
    max_shard_bytes: int = 4 * 2**30,
) -> Path:
    """Writes `params` as a Hugging Face checkpoint directory at `path`; returns the path.

    Args:
      dtype: storage dtype of the tensors (default: the params' own dtype).
      max_shard_bytes: split into `model-0000k-of-0000n.safetensors` + index beyond this size.

    On multi-host jobs every process must call this; only process 0 writes.
    """
    path = Path(path)
    specs = tensor_specs(config)
    flat = jax.tree.leaves(params)
    if len(flat) != len(specs):
        raise CheckpointError(
            f"params have {len(flat)} arrays, config {config.architecture} expects {len(specs)}"
        )
    tensors: dict[str, np.ndarray] = {}
    for spec, value in zip(specs, flat):
        host = _to_host(value)
        if dtype is not None:
            host = host.astype(jnp.dtype(dtype))
        per_layer = [host] if spec.num_layers is None else list(host)
        for name, array in zip(spec.hf_names(), per_layer):
            tensors[name] = spec.to_hf(array)
    if jax.process_index() != 0:
        return path

    hf_config = config.to_hf_dict()
    stored = jnp.dtype(dtype or config.params_dtype).name
    hf_config["torch_dtype"] = hf_config["dtype"] = stored
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / CONFIG_FILE).write_text(json.dumps(hf_config, indent=2) + "\n")
    _write_shards(tensors, tmp, max_shard_bytes)
    _replace_dir(tmp, path)
    return path


def _write_shards(tensors: dict[str, np.ndarray], directory: Path, max_shard_bytes: int) -> None:
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, array in tensors.items():
        if shards[-1] and size + array.nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = array
        size += array.nbytes
    metadata = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], str(directory / SINGLE_FILE), metadata=metadata)
        return
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / file), metadata=metadata)
        weight_map.update({name: file for name in shard})
    index = {
        "metadata": {"total_size": sum(a.nbytes for a in tensors.values())},
        "weight_map": weight_map,
    }
    (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")


def _replace_dir(new: Path, target: Path) -> None:
    """Moves `new` to `target`; an existing `target` is swapped out, then deleted."""
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)
