"""Orbax checkpoints of a run: train state + data iterator state, async, keep-last-K.

Orbax writes each step into a temporary directory and renames it into place once every file is
written, so a crash mid-save leaves at most an ignored temporary directory: the last finished
checkpoint is untouched. On restore, a checkpoint that fails to read (truncated or corrupt
files) is reported and the next older one is tried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

STATE_ITEM = "state"
DATA_ITEM = "data"


class Checkpointer:
    """Saves and restores `(TrainState, data_state: dict)` under `directory`."""

    def __init__(self, directory: str | Path, *, save_every: int, keep: int,
                 async_save: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=save_every,
            max_to_keep=keep,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
            create=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=(STATE_ITEM, DATA_ITEM))

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, data_state: dict[str, Any], *, force: bool = False) -> bool:
        """Starts saving (async); returns whether a checkpoint is written at this step."""
        return self._manager.save(
            step,
            args=ocp.args.Composite(**{
                STATE_ITEM: ocp.args.StandardSave(state),
                DATA_ITEM: ocp.args.JsonSave(data_state),
            }),
            force=force,
        )

    def restore_latest(self, abstract_state) -> tuple[int, Any, dict] | None:
        """(step, state, data_state) of the newest readable checkpoint, or None if none exists.

        `abstract_state` is a pytree of jax.ShapeDtypeStruct with shardings: arrays are restored
        directly into those shardings.
        """
        for step in reversed(self.steps()):
            try:
                restored = self._manager.restore(step, args=ocp.args.Composite(**{
                    STATE_ITEM: ocp.args.StandardRestore(abstract_state),
                    DATA_ITEM: ocp.args.JsonRestore(),
                }))
                state = restored[STATE_ITEM]
                jax.block_until_ready(state)
                return step, state, dict(restored[DATA_ITEM])
            except Exception as error:  # noqa: BLE001 - any read failure means "unusable"
                logging.warning("checkpoint %s/%d cannot be restored (%s: %s); trying the "
                                "previous one", self.directory, step, type(error).__name__,
                                str(error).splitlines()[0][:300] if str(error) else "")
                print(f"WARNING: checkpoint step {step} in {self.directory} is unreadable "
                      f"({type(error).__name__}); falling back to an older checkpoint",
                      flush=True)
        return None

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

