"""Orbax checkpoints of a run: train state + data iterator state, async, keep-last-K.

Orbax writes each step into a temporary directory and renames it into place once every file is
written, so a crash mid-save leaves at most an ignored temporary directory: the last finished
checkpoint is untouched.

On restore, newest first, each checkpoint's metadata (shapes and dtypes of the saved train
state) is compared with the state this run builds before anything is read: a checkpoint of
another model or optimizer (a changed `hidden_size`, a layer more) raises
`CheckpointMismatchError` naming each differing array (its path, stored and new shape and dtype)
rather than passing for unreadable. A checkpoint that fails to read (truncated or corrupt files)
is reported and the next older one is tried; every unreadable one is then set aside, renamed to
`<step>.unreadable-<time>` (a name orbax ignores, kept for inspection), so that the run that
re-trains those steps saves them again: one valid checkpoint per step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from reasonrl.errors import ReasonRLError

STATE_ITEM = "state"
DATA_ITEM = "data"
CHECKPOINTS_DIR = "checkpoints"  # a stage's checkpoints, under its workdir
_MAX_SHOWN = 8  # differing arrays named in a CheckpointMismatchError


class CheckpointMismatchError(ReasonRLError, ValueError):
    """A checkpoint holds a train state of another shape than the run's model and optimizer."""


def checkpoint_steps(directory: str | Path) -> list[int]:
    """The finished checkpoints' steps under `directory`, without opening a manager."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


def _flat_arrays(tree) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """dotted path -> (shape, dtype) of every array leaf, keyed as orbax stores them."""
    flat = ocp.tree.to_flat_dict(ocp.tree.serialize_tree(tree, keep_empty_nodes=True))
    return {
        ".".join(str(k) for k in path): (tuple(leaf.shape), np.dtype(leaf.dtype))
        for path, leaf in flat.items()
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype")
    }


def _describe(array: tuple[tuple[int, ...], np.dtype] | None) -> str:
    return "absent" if array is None else f"{array[0]} {array[1]}"


def state_differences(stored_tree, abstract_state) -> list[str]:
    """ "<path>: <stored shape dtype> → <new shape dtype>" for every array that differs, the
    shallowest paths first (a model's own parameters before the optimizer's copies of them)."""
    stored, expected = _flat_arrays(stored_tree), _flat_arrays(abstract_state)
    differing = [
        path for path in set(stored) | set(expected) if stored.get(path) != expected.get(path)
    ]
    return [
        f"{path}: {_describe(stored.get(path))} → {_describe(expected.get(path))}"
        for path in sorted(differing, key=lambda path: (path.count("."), path))
    ]


def gather_process_bytes(local: bytes) -> list[bytes]:
    """Every process's `local` bytes, by process index (a collective: every process calls it
    with its own bytes, e.g. its data iterator state; one process: `[local]`)."""
    if jax.process_count() == 1:
        return [local]
    from jax.experimental import multihost_utils

    lengths = multihost_utils.process_allgather(np.asarray(len(local), np.int32))
    padded = np.zeros(int(np.max(lengths)), np.uint8)
    padded[: len(local)] = np.frombuffer(local, np.uint8)
    gathered = multihost_utils.process_allgather(padded)  # uint8 [processes, longest]
    return [bytes(row[: int(n)]) for row, n in zip(gathered, np.ravel(lengths))]


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else ""


class Checkpointer:
    """Saves and restores `(TrainState, data_state: dict)` under `directory`.

    `data_state` is JSON written by process 0 only, in the same step directory as the train
    state (so it is renamed into place with it): a caller whose processes read different data
    merges their states first (`gather_process_bytes`), as `reasonrl.train.engine.StageRun`
    does with the logical data shards of every process.
    """

    def __init__(
        self, directory: str | Path, *, save_every: int, keep: int, async_save: bool = True
    ):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=save_every,
            max_to_keep=keep,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
            create=True,
        )
        # Handlers registered up front, so that a step's metadata reads before any restore.
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                STATE_ITEM: ocp.StandardCheckpointHandler(),
                DATA_ITEM: ocp.JsonCheckpointHandler(),
            },
        )

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, data_state: dict[str, Any], *, force: bool = False) -> bool:
        """Starts saving (async); returns whether a checkpoint is written at this step."""
        return self._manager.save(
            step,
            args=ocp.args.Composite(
                **{
                    STATE_ITEM: ocp.args.StandardSave(state),
                    DATA_ITEM: ocp.args.JsonSave(data_state),
                }
            ),
            force=force,
        )

    def restore_latest(self, abstract_state) -> tuple[int, Any, dict] | None:
        """(step, state, data_state) of the newest readable checkpoint, or None if none exists.

        `abstract_state` is a pytree of jax.ShapeDtypeStruct with shardings: arrays are restored
        directly into those shardings. Raises CheckpointMismatchError when a checkpoint holds
        arrays of other shapes or dtypes; sets unreadable newer checkpoints aside.
        """
        unreadable = []
        try:
            for step in reversed(self.steps()):
                restored = self._restore(step, abstract_state)
                if restored is not None:
                    return restored
                unreadable.append(step)
            return None
        finally:
            self._set_aside(unreadable)

    def _restore(self, step: int, abstract_state) -> tuple[int, Any, dict] | None:
        """The checkpoint at `step`, or None when it cannot be read."""
        try:
            metadata = self._manager.metadata(step).item_metadata[STATE_ITEM]
        except Exception as error:  # noqa: BLE001 - any read failure means "unusable"
            return self._unreadable(step, error)
        mismatches = state_differences(getattr(metadata, "tree", metadata), abstract_state)
        if mismatches:
            raise CheckpointMismatchError(self._mismatch_message(step, mismatches))
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    **{
                        STATE_ITEM: ocp.args.StandardRestore(abstract_state),
                        DATA_ITEM: ocp.args.JsonRestore(),
                    }
                ),
            )
            state = restored[STATE_ITEM]
            jax.block_until_ready(state)
            return step, state, dict(restored[DATA_ITEM])
        except Exception as error:  # noqa: BLE001 - any read failure means "unusable"
            return self._unreadable(step, error)

    def _mismatch_message(self, step: int, mismatches: list[str]) -> str:
        shown = "; ".join(mismatches[:_MAX_SHOWN])
        more = f"; and {len(mismatches) - _MAX_SHOWN} more" if len(mismatches) > _MAX_SHOWN else ""
        return (
            f"checkpoint step {step} in {self.directory} was written by another model or "
            f"optimizer than this run's ({len(mismatches)} arrays differ, stored → new): "
            f"{shown}{more}; restore the config it was made with, or start the stage over "
            f"(delete {self.directory}, or use another workdir)"
        )

    def _unreadable(self, step: int, error: BaseException) -> None:
        logging.warning(
            "checkpoint %s/%d cannot be restored (%s: %s); trying the previous one",
            self.directory,
            step,
            type(error).__name__,
            _first_line(error),
        )
        print(
            f"WARNING: checkpoint step {step} in {self.directory} is unreadable "
            f"({type(error).__name__}); falling back to an older checkpoint",
            flush=True,
        )
        return None

    def _set_aside(self, steps: list[int]) -> None:
        """Renames unreadable checkpoints out of orbax's view (process 0; every process waits
        for it) and reloads the manager's list of steps."""
        if not steps:
            return
        stamp = time.strftime("%Y%m%dT%H%M%S")
        if jax.process_index() == 0:
            for step in steps:
                target = self.directory / f"{step}.unreadable-{stamp}"
                (self.directory / str(step)).rename(target)
                print(
                    f"WARNING: set the unreadable checkpoint step {step} aside as {target}",
                    flush=True,
                )
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"set aside checkpoints {self.directory}")
        self._manager.reload()

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
