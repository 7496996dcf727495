"""Meshes, logical-axis sharding rules and multi-host start-up."""

from reasonrl.parallel.distributed import initialize_distributed
from reasonrl.parallel.mesh import (
    MESH_AXES,
    MeshConfig,
    MeshError,
    MeshJit,
    auto_mesh,
    jit_on_mesh,
    make_mesh,
    view_on_mesh,
)
from reasonrl.parallel.rules import (
    DEFAULT_RULES,
    batch_sharding,
    batch_split_count,
    explain,
    logical_sharding,
    logical_to_spec,
    mesh_axes_for,
    tree_shardings,
)

__all__ = [
    "DEFAULT_RULES",
    "MESH_AXES",
    "auto_mesh",
    "batch_sharding",
    "batch_split_count",
    "MeshConfig",
    "MeshError",
    "MeshJit",
    "explain",
    "initialize_distributed",
    "jit_on_mesh",
    "logical_sharding",
    "logical_to_spec",
    "make_mesh",
    "mesh_axes_for",
    "tree_shardings",
    "view_on_mesh",
]
