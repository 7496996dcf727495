"""Device meshes with the axes every reasonrl job uses: data, fsdp and tensor.

    data   — pure data parallelism: parameters replicated, batch split.
    fsdp   — fully sharded data parallelism: batch split *and* parameters sharded (ZeRO-3).
    tensor — tensor (model) parallelism: heads, MLP width and vocabulary split.

A mesh is a config value: `MeshConfig(data=1, fsdp=-1, tensor=1)`; -1 fills the devices left.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh

MESH_AXES = ("data", "fsdp", "tensor")


class MeshError(ValueError):
    """A mesh shape that does not fit the devices available."""


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Sizes of the (data, fsdp, tensor) mesh axes; at most one may be -1 (fill)."""

    data: int = 1
    fsdp: int = -1
    tensor: int = 1

    @classmethod
    def from_value(cls, value) -> "MeshConfig":
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
                    f"not divide the {num_devices} available devices")
            sizes = tuple(num_devices // fixed if s == -1 else s for s in sizes)
        elif fixed != num_devices:
            raise MeshError(
                f"mesh {dict(zip(MESH_AXES, sizes))} needs {fixed} devices but "
                f"{num_devices} are available")
        return sizes  # type: ignore[return-value]


def make_mesh(config: MeshConfig | Sequence[int] | dict = MeshConfig(),
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A `Mesh` over `devices` (default: all) with axes ("data", "fsdp", "tensor").

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
