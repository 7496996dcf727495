"""Logical axis names -> mesh axes: the one table that decides how everything is sharded.

Parameters and activations are annotated with *logical* axis names ("embed", "q_heads", ...).
`DEFAULT_RULES` maps each to zero or more mesh axes. Changing the parallelism of a job is a
change of mesh shape (or of this table in its config), never a change of model code.

Where a dimension is not divisible by the mesh axes its rule names (e.g. 2 KV heads on a tensor
axis of 4), that dimension stays replicated over those axes rather than failing; `explain()`
lists every such fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

LogicalAxes = Sequence[str | None]
Rules = tuple[tuple[str, tuple[str, ...]], ...]


def _rules(*pairs) -> Rules:
    return tuple(
        (name, tuple([axes] if isinstance(axes, str) else axes or ())) for name, axes in pairs
    )


DEFAULT_RULES: Rules = _rules(
    # Activations.
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("activation_embed", None),
    # Parameters (and the activation dims that share their names).
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("q_heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("head_dim", None),
    ("layers", None),
    ("norm", None),
)


def mesh_axes_for(name: str | None, rules: Rules) -> tuple[str, ...]:
    """The mesh axes a logical axis name maps to (empty: replicated)."""
    if name is None:
        return ()
    for rule_name, axes in rules:
        if rule_name == name:
            return axes
    raise KeyError(
        f"logical axis {name!r} has no sharding rule; rules cover "
        f"{[rule_name for rule_name, _ in rules]}"
    )


def logical_to_spec(
    logical_axes: LogicalAxes, shape: Sequence[int], mesh: Mesh, rules: Rules = DEFAULT_RULES
) -> PartitionSpec:
    """A PartitionSpec for an array of `shape` whose dims carry `logical_axes`.

    Each mesh axis is used at most once per array; mesh axes of size 1 are dropped; trailing
    mesh axes that would not divide the dimension are dropped (the dimension stays replicated
    over them).
    """
    if len(logical_axes) != len(shape):
        raise ValueError(f"logical axes {tuple(logical_axes)} do not match shape {tuple(shape)}")
    used: set[str] = set()
    spec = []
    for name, size in zip(logical_axes, shape):
        axes = [a for a in mesh_axes_for(name, rules) if a not in used and mesh.shape[a] > 1]
        while axes and size % math.prod(mesh.shape[a] for a in axes):
            axes.pop()
        used.update(axes)
        spec.append(None if not axes else axes[0] if len(axes) == 1 else tuple(axes))
    return PartitionSpec(*spec)


def logical_sharding(
    logical_axes: LogicalAxes, shape: Sequence[int], mesh: Mesh, rules: Rules = DEFAULT_RULES
) -> NamedSharding:
    return NamedSharding(mesh, logical_to_spec(logical_axes, shape, mesh, rules))


def batch_sharding(mesh: Mesh, rules: Rules = DEFAULT_RULES) -> NamedSharding:
    """Sharding of any [B, ...] batch array: rows split over the "batch" rule's mesh axes."""
    axes = tuple(a for a in mesh_axes_for("batch", rules) if mesh.shape[a] > 1)
    return NamedSharding(mesh, PartitionSpec(axes if axes else None))


def batch_split_count(mesh: Mesh, rules: Rules = DEFAULT_RULES) -> int:
    """How many pieces the batch dimension is split into (global batch must divide by it)."""
    return math.prod(mesh.shape[a] for a in mesh_axes_for("batch", rules))


def tree_shardings(logical_tree, shape_tree, mesh: Mesh, rules: Rules = DEFAULT_RULES):
    """NamedShardings for a pytree, given matching trees of logical axes and shaped leaves."""
    return jax.tree.map(
        lambda axes, leaf: logical_sharding(axes, leaf.shape, mesh, rules),
        logical_tree,
        shape_tree,
        is_leaf=lambda x: isinstance(x, tuple),
    )


def explain(logical_tree, shape_tree, mesh: Mesh, rules: Rules = DEFAULT_RULES) -> list[str]:
    """Human-readable lines for every dimension left replicated although its rule shards it."""
    lines = []
    flat_axes = jax.tree_util.tree_flatten_with_path(
        logical_tree, is_leaf=lambda x: isinstance(x, tuple)
    )[0]
    flat_shapes = jax.tree.leaves(shape_tree)
    for (path, axes), leaf in zip(flat_axes, flat_shapes):
        spec = logical_to_spec(axes, leaf.shape, mesh, rules)
        for name, size, got in zip(axes, leaf.shape, spec):
            wanted = [a for a in mesh_axes_for(name, rules) if mesh.shape[a] > 1]
            got_axes = () if got is None else (got,) if isinstance(got, str) else tuple(got)
            if tuple(wanted) != got_axes:
                lines.append(
                    f"{jax.tree_util.keystr(path)}: {name}={size} sharded over "
                    f"{got_axes or 'nothing'} instead of {tuple(wanted)}"
                )
    return lines
