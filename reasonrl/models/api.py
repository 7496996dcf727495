"""Pure functions over (config, params): initialise, shard, run.

Params are a plain nested dict of arrays (no Flax boxes). Their logical axes come from the module
definitions, so the one rules table in `reasonrl.parallel.rules` decides every sharding.

    params = init_params(config, jax.random.key(0), mesh=mesh)       # created already sharded
    logits = forward(config, params, tokens)                          # float32 [B, T, V]

Inside larger jitted functions (losses, samplers) use `hidden_states` and `logits_from_hidden`,
which are traceable and do no validation or host work.

Any mesh works: `parallel.make_mesh`'s, or one from `jax.make_mesh` (Explicit axes), also while
set with `jax.set_mesh`. Params and logits live on that mesh; the computation runs on its Auto
view (see `reasonrl.parallel.mesh`).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from reasonrl.errors import ReasonRLError
from reasonrl.models.config import ModelConfig
from reasonrl.models.layers import ActivationSharding
from reasonrl.models.transformer import CausalLM, KVCache, SlotCache
from reasonrl.parallel.mesh import jit_on_mesh
from reasonrl.parallel.rules import (
    DEFAULT_RULES,
    Rules,
    batch_sharding,
    batch_split_count,
    tree_shardings,
)

Array = jax.Array
Params = dict


class InputError(ReasonRLError, ValueError):
    """Model inputs of the wrong shape, dtype or range."""


def build_model(config: ModelConfig, sharding: ActivationSharding | None = None) -> CausalLM:
    return CausalLM(config, sharding)


def _boxed_abstract(config: ModelConfig):
    model = build_model(config)
    dummy = jax.ShapeDtypeStruct((1, 1), jnp.int32)
    return jax.eval_shape(
        lambda tokens: model.init(jax.random.key(0), tokens, method=CausalLM.init_all), dummy
    )["params"]


@functools.lru_cache(maxsize=64)
def param_shapes(config: ModelConfig) -> Params:
    """Pytree of jax.ShapeDtypeStruct, one per parameter."""
    return nn.meta.unbox(_boxed_abstract(config))


@functools.lru_cache(maxsize=64)
def param_logical_axes(config: ModelConfig) -> Params:
    """Pytree of tuples of logical axis names per parameter, e.g. ("layers", "embed", "mlp")."""
    specs = nn.get_partition_spec(_boxed_abstract(config))
    return jax.tree.map(tuple, specs, is_leaf=lambda x: isinstance(x, PartitionSpec))


def param_shardings(config: ModelConfig, mesh: Mesh, rules: Rules = DEFAULT_RULES) -> Params:
    """Pytree of NamedSharding for every parameter on `mesh` (any axis types: the shardings name
    `mesh` itself, so params placed with them live on the caller's mesh)."""
    return tree_shardings(param_logical_axes(config), param_shapes(config), mesh, rules)


def num_params(config: ModelConfig) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(param_shapes(config)))


def init_params(
    config: ModelConfig, rng: Array, *, mesh: Mesh | None = None, rules: Rules = DEFAULT_RULES
) -> Params:
    """Fresh parameters, created directly in their target sharding (never gathered first).

    With a mesh (any axis types, see `reasonrl.parallel.mesh`) the params live on that mesh.
    """
    model = build_model(config)

    def init(key):
        variables = model.init(key, jnp.zeros((1, 1), jnp.int32), method=CausalLM.init_all)
        return nn.meta.unbox(variables["params"])

    out_shardings = None if mesh is None else param_shardings(config, mesh, rules)
    return jit_on_mesh(init, mesh, out_shardings=out_shardings)(rng)


def hidden_states(
    config: ModelConfig,
    params: Params,
    tokens: Array,
    positions: Array,
    segment_ids: Array,
    *,
    sharding: ActivationSharding | None = None,
    cache: KVCache | None = None,
    cache_index: Array | None = None,
) -> tuple[Array, KVCache | None]:
    """Traceable: final hidden states [B, T, D] (and the updated cache, if one is given)."""
    return build_model(config, sharding).apply(
        {"params": params}, tokens, positions, segment_ids, cache, cache_index
    )


def decode_slots(
    config: ModelConfig,
    params: Params,
    tokens: Array,
    cache: SlotCache,
    *,
    sharding: ActivationSharding | None = None,
) -> tuple[Array, SlotCache]:
    """Traceable: one decode step over a slot cache (`CausalLM.decode_slots`).

    tokens int32 [B] -> final hidden states [B, 1, D] and the cache with the tokens written.
    """
    return build_model(config, sharding).apply(
        {"params": params}, tokens, cache, method=CausalLM.decode_slots
    )


def logits_from_hidden(
    config: ModelConfig,
    params: Params,
    hidden: Array,
    *,
    sharding: ActivationSharding | None = None,
) -> Array:
    """Traceable: float32 logits [..., V] from hidden states [..., D]."""
    return build_model(config, sharding).apply({"params": params}, hidden, method=CausalLM.logits)


def default_positions(tokens: Array) -> Array:
    return jnp.broadcast_to(jnp.arange(tokens.shape[-1], dtype=jnp.int32), tokens.shape)


def mesh_of(params: Params) -> Mesh | None:
    """The mesh the params live on, or None when they are not NamedSharding-placed."""
    leaf = jax.tree.leaves(params)[0]
    sharding = getattr(leaf, "sharding", None)
    return sharding.mesh if isinstance(sharding, NamedSharding) else None


@functools.lru_cache(maxsize=32)
def make_forward(config: ModelConfig, mesh: Mesh | None = None, rules: Rules = DEFAULT_RULES):
    """A jitted `(params, tokens, positions, segment_ids) -> logits` with explicit shardings.

    Without a mesh it runs on the default device. With one, the batch is split over
    ("data", "fsdp"), parameters follow the rules table and logits come back batch-sharded on
    `mesh`. Any mesh works (Auto or Explicit axes, set globally or not): the computation runs
    on its Auto view (`parallel.jit_on_mesh`).
    """
    if mesh is None:
        sharding = None
        in_shardings = out_shardings = None
    else:
        sharding = ActivationSharding(mesh, rules)
        rows = batch_sharding(mesh, rules)
        in_shardings = (param_shardings(config, mesh, rules), rows, rows, rows)
        out_shardings = batch_sharding(mesh, rules)

    def fn(params, tokens, positions, segment_ids):
        hidden, _ = hidden_states(config, params, tokens, positions, segment_ids, sharding=sharding)
        return logits_from_hidden(config, params, hidden, sharding=sharding)

    return jit_on_mesh(fn, mesh, in_shardings=in_shardings, out_shardings=out_shardings)


def validate_tokens(
    config: ModelConfig,
    tokens,
    positions=None,
    segment_ids=None,
    mesh: Mesh | None = None,
    rules: Rules = DEFAULT_RULES,
) -> None:
    """Raises InputError for a wrong shape/dtype, out-of-vocabulary ids or an unsplittable batch."""
    shape = np.shape(tokens)
    if len(shape) != 2:
        raise InputError(f"tokens must be [batch, length], got shape {shape}")
    if not jnp.issubdtype(jnp.asarray(tokens).dtype, jnp.integer):
        raise InputError(f"tokens must be integers, got dtype {jnp.asarray(tokens).dtype}")
    for name, arr in (("positions", positions), ("segment_ids", segment_ids)):
        if arr is not None and np.shape(arr) != shape:
            raise InputError(f"{name} shape {np.shape(arr)} differs from tokens shape {shape}")
    if shape[1] > config.max_position_embeddings:
        raise InputError(
            f"sequence length {shape[1]} exceeds max_position_embeddings="
            f"{config.max_position_embeddings}"
        )
    if not isinstance(tokens, jax.core.Tracer):
        host = np.asarray(tokens)
        bad = (host < 0) | (host >= config.vocab_size)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"token id {int(host[where])} at (batch, position) {where} is outside the "
                f"vocabulary [0, {config.vocab_size})"
            )
    if mesh is not None:
        splits = batch_split_count(mesh, rules)
        if shape[0] % splits:
            raise InputError(
                f"batch size {shape[0]} is not divisible by {splits}, the number of "
                f"batch shards of mesh {dict(mesh.shape)}"
            )


def forward(
    config: ModelConfig,
    params: Params,
    tokens,
    *,
    positions=None,
    segment_ids=None,
    rules: Rules = DEFAULT_RULES,
) -> Array:
    """float32 logits [B, T, V] for int32 tokens [B, T].

    Args:
      positions: int32 [B, T]; defaults to 0..T-1 in every row.
      segment_ids: int32 [B, T]; packed documents (distinct ids) never attend to each other;
        0 marks padding. Defaults to all ones.

    Runs on the mesh the params are sharded over (see `init_params` / `load_hf_checkpoint`),
    whatever its axis types, with the sharding `rules` they were placed with; the logits live
    on that mesh.
    """
    mesh = mesh_of(params)
    validate_tokens(config, tokens, positions, segment_ids, mesh, rules)
    tokens = jnp.asarray(tokens, jnp.int32)
    positions = (
        default_positions(tokens) if positions is None else jnp.asarray(positions, jnp.int32)
    )
    segment_ids = (
        jnp.ones_like(tokens) if segment_ids is None else jnp.asarray(segment_ids, jnp.int32)
    )
    return make_forward(config, mesh, rules)(params, tokens, positions, segment_ids)
