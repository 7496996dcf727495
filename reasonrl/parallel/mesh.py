"""Device meshes with the axes every reasonrl job uses: data, fsdp and tensor.

    data   — pure data parallelism: parameters replicated, batch split.
    fsdp   — fully sharded data parallelism: batch split *and* parameters sharded (ZeRO-3).
    tensor — tensor (model) parallelism: heads, MLP width and vocabulary split.

A mesh is a config value: `MeshConfig(data=1, fsdp=-1, tensor=1)`; -1 fills the devices left.

Any mesh works, not only `make_mesh`'s. A mesh from `jax.make_mesh` (whose axes are `Explicit`
by default since JAX 0.7), one with `Auto` axes, and either one set globally with `jax.set_mesh`
give the same numbers. The rule:

  * Arrays the user sees (params from `init_params` / `load_hf_checkpoint`, logits, train states,
    metrics) live on the user's mesh, typed as its axis types say, so they combine with the
    user's own arrays on it (`logits.sum()` works under `jax.set_mesh(mesh)`).
  * Every computation runs on `auto_mesh(mesh)`: the same devices and axis names with every axis
    `Auto`, where the sharding rules are constraints the compiler propagates. (On `Explicit`
    axes a sharding is part of each array's type: the embedding gather of a sharded table then
    needs an `out_sharding=`, and `with_sharding_constraint` is refused.) `jit_on_mesh` is the
    one place that does it: it relabels incoming arrays onto the Auto view (no copy: the device
    buffers are shared), traces and runs under `jax.set_mesh(auto view)` whatever mesh is set
    globally, and relabels the results back onto the user's mesh. Code that jits its own
    computation over the model (a loss, a scorer) uses `jit_on_mesh` too; `ActivationSharding`
    already places its constraints on the Auto view.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh, NamedSharding

from reasonrl.errors import ReasonRLError

MESH_AXES = ("data", "fsdp", "tensor")


class MeshError(ReasonRLError, ValueError):
    """A mesh shape that does not fit the devices available."""


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Sizes of the (data, fsdp, tensor) mesh axes; at most one may be -1 (fill)."""

    data: int = 1
    fsdp: int = -1
    tensor: int = 1

    @classmethod
    def from_value(cls, value) -> MeshConfig:
        """Accepts a MeshConfig, a mapping with data/fsdp/tensor, or a 3-sequence."""
        if isinstance(value, MeshConfig):
            return value
        if hasattr(value, "items"):
            unknown = set(dict(value.items())) - set(MESH_AXES)
            if unknown:
                raise MeshError(f"unknown mesh axes {sorted(unknown)}; axes are {MESH_AXES}")
            return cls(**dict(value.items()))
        sizes = tuple(value)
        if len(sizes) != 3:
            raise MeshError(f"a mesh shape has 3 sizes (data, fsdp, tensor), got {sizes}")
        return cls(*sizes)

    def resolve(self, num_devices: int) -> tuple[int, int, int]:
        """Concrete axis sizes for `num_devices`, or a MeshError saying why they do not fit."""
        sizes = (self.data, self.fsdp, self.tensor)
        for axis, size in zip(MESH_AXES, sizes):
            if not isinstance(size, (int, np.integer)) or (size < 1 and size != -1):
                raise MeshError(f"mesh axis {axis}={size!r}: sizes are positive ints or -1")
        if sizes.count(-1) > 1:
            raise MeshError(f"mesh {dict(zip(MESH_AXES, sizes))}: at most one axis may be -1")
        fixed = math.prod(s for s in sizes if s != -1)
        if -1 in sizes:
            if num_devices % fixed:
                raise MeshError(
                    f"mesh {dict(zip(MESH_AXES, sizes))}: the fixed axes ({fixed} devices) do "
                    f"not divide the {num_devices} available devices"
                )
            sizes = tuple(num_devices // fixed if s == -1 else s for s in sizes)
        elif fixed != num_devices:
            raise MeshError(
                f"mesh {dict(zip(MESH_AXES, sizes))} needs {fixed} devices but "
                f"{num_devices} are available"
            )
        return sizes  # type: ignore[return-value]


def make_mesh(
    config: MeshConfig | Sequence[int] | dict = MeshConfig(),
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """A `Mesh` over `devices` (default: all) with axes ("data", "fsdp", "tensor"), all Auto.

    Uses `mesh_utils` so that on TPU/GPU the tensor axis lands on the fastest interconnect.
    """
    config = MeshConfig.from_value(config)
    devices = list(jax.devices() if devices is None else devices)
    shape = config.resolve(len(devices))
    try:
        device_array = mesh_utils.create_device_mesh(shape, devices=devices)
    except (AssertionError, NotImplementedError, ValueError):
        device_array = np.asarray(devices).reshape(shape)
    return Mesh(device_array, MESH_AXES)


_set_mesh = getattr(jax, "set_mesh", None) or jax.sharding.use_mesh  # JAX < 0.7: use_mesh


@functools.lru_cache(maxsize=64)
def auto_mesh(mesh: Mesh) -> Mesh:
    """`mesh` with every axis Auto (the same devices and axis names); `mesh` itself if it is."""
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


@functools.lru_cache(maxsize=64)
def _other_view(source: Mesh, target: Mesh) -> bool:
    """True when `source` is `target`'s devices and axis names under other axis types."""
    return (
        source != target
        and source.axis_names == target.axis_names
        and source.devices.shape == target.devices.shape
        and tuple(source.devices.flat) == tuple(target.devices.flat)
    )


def _needs_view(leaf, mesh: Mesh) -> bool:
    sharding = leaf if isinstance(leaf, NamedSharding) else getattr(leaf, "sharding", None)
    return (
        isinstance(sharding, NamedSharding)
        and isinstance(sharding.mesh, Mesh)
        and _other_view(sharding.mesh, mesh)
    )


def _on(sharding: NamedSharding, mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, sharding.spec, memory_kind=sharding.memory_kind)


def view_on_mesh(tree, mesh: Mesh):
    """`tree` with every array and NamedSharding that lives on another typing of `mesh` (the same
    devices and axis names, other axis types) relabelled onto `mesh`. Arrays are not copied: the
    relabelled ones share the device buffers. Every other leaf is returned as it is."""
    leaves, treedef = jax.tree.flatten(tree)
    moved = [i for i, leaf in enumerate(leaves) if _needs_view(leaf, mesh)]
    if not moved:
        return tree
    for i in moved:
        leaves[i] = _relabel(leaves[i], mesh)
    return jax.tree.unflatten(treedef, leaves)


def _relabel(leaf, mesh: Mesh):
    """A NamedSharding, or an array (from its own device buffers, on every process), on `mesh`."""
    if isinstance(leaf, NamedSharding):
        return _on(leaf, mesh)
    return jax.make_array_from_single_device_arrays(
        leaf.shape, _on(leaf.sharding, mesh), [shard.data for shard in leaf.addressable_shards]
    )


def _is_sharding(x) -> bool:
    return isinstance(x, jax.sharding.Sharding)


def _place(tree, shardings):
    """`tree` with each array committed to another sharding than its entry of `shardings` (a
    prefix tree of `tree`) moved there: jit rejects those. Host arrays and uncommitted arrays
    are left to jit, as they would be without this."""
    leaves, treedef = jax.tree.flatten(tree)
    per_leaf = jax.tree.map(
        lambda s, sub: jax.tree.map(lambda _: s, sub), shardings, tree, is_leaf=_is_sharding
    )
    targets = jax.tree.leaves(per_leaf, is_leaf=_is_sharding)
    moved = [
        i
        for i, (leaf, target) in enumerate(zip(leaves, targets))
        if getattr(leaf, "committed", False) and leaf.sharding != target
    ]
    if not moved:
        return tree
    placed = jax.device_put([leaves[i] for i in moved], [targets[i] for i in moved])
    for i, array in zip(moved, placed):
        leaves[i] = array
    return jax.tree.unflatten(treedef, leaves)


class MeshJit:
    """`jax.jit(fn, ...)` that accepts and returns arrays on `mesh` but runs on its Auto view.

    Calling it relabels the arguments onto `auto_mesh(mesh)` without a copy, moves those committed
    to another sharding than `in_shardings` says (under `jax.set_mesh`, `jnp.asarray` returns
    arrays committed to the mesh, which jit would reject), runs the jitted function under
    `jax.set_mesh(auto_mesh(mesh))` (so a mesh set globally by the caller, Explicit or not, does
    not leak into the trace) and relabels the results back onto `mesh`. Called inside another
    trace it is the plain jitted function (a nested jit). Attributes not defined here
    (`_cache_size`, ...) are those of the underlying jitted function.
    """

    def __init__(self, fn: Callable, mesh: Mesh, **jit_kwargs):
        self.mesh = mesh
        self.auto_mesh = auto_mesh(mesh)
        for name in ("in_shardings", "out_shardings"):
            if jit_kwargs.get(name) is not None:
                jit_kwargs[name] = view_on_mesh(jit_kwargs[name], self.auto_mesh)
        self.in_shardings = jit_kwargs.get("in_shardings")
        self.jitted = jax.jit(fn, **jit_kwargs)

    def _inputs(self, args: tuple) -> tuple:
        args = view_on_mesh(args, self.auto_mesh)
        if self.in_shardings is not None:
            args = _place(args, tuple(self.in_shardings))
        return args

    def __call__(self, *args):
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(args)):
            return self.jitted(*args)
        with _set_mesh(self.auto_mesh):
            out = self.jitted(*self._inputs(args))
        return view_on_mesh(out, self.mesh)

    def lower(self, *args):
        with _set_mesh(self.auto_mesh):
            return self.jitted.lower(*self._inputs(args))

    def __getattr__(self, name):
        return getattr(self.jitted, name)


def jit_on_mesh(fn: Callable, mesh: Mesh | None, **jit_kwargs):
    """`jax.jit(fn, **jit_kwargs)` for arrays on `mesh`, whatever its axis types (see the module
    docstring); shardings in `in_shardings` (a tuple, one entry per positional argument) and
    `out_shardings` may name `mesh` or its Auto view. Without a mesh: plain `jax.jit`."""
    if mesh is None:
        return jax.jit(fn, **jit_kwargs)
    return MeshJit(fn, mesh, **jit_kwargs)
