"""Checkpoints of another model shape are refused by name; unreadable ones are set aside."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl.train.checkpointing import Checkpointer, CheckpointMismatchError


def _state(width: int = 8, dtype=jnp.float32, extra: bool = False):
    params = {"w": jnp.full((4, width), 2.0, dtype)}
    if extra:
        params["b"] = jnp.zeros((width,), jnp.float32)
    return {"params": params, "step": jnp.int32(0)}


def _abstract(state):
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), state
    )


def _checkpointer(directory) -> Checkpointer:
    return Checkpointer(directory, save_every=1, keep=5, async_save=False)


def _saved(directory, steps=(3, 6)) -> None:
    checkpointer = _checkpointer(directory)
    for step in steps:
        checkpointer.save(step, _state(), {"iterator": f"at {step}"})
    checkpointer.close()


def _truncate(step_dir) -> None:
    files = [
        f
        for f in step_dir.rglob("*")
        if f.is_file() and f.stat().st_size > 0 and "state" in f.parts
    ]
    assert files
    for file in files:
        with open(file, "r+b") as handle:
            handle.truncate(file.stat().st_size // 2)


@pytest.mark.parametrize(
    "new_state, expected",
    [
        (_state(width=16), r"params\.w: \(4, 8\) float32 → \(4, 16\) float32"),
        (_state(dtype=jnp.bfloat16), r"params\.w: \(4, 8\) float32 → \(4, 8\) bfloat16"),
        (_state(extra=True), r"params\.b: absent → \(8,\) float32"),
    ],
)
def test_another_model_shape_is_refused_by_name(tmp_path, capsys, new_state, expected):
    _saved(tmp_path)
    checkpointer = _checkpointer(tmp_path)
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint step 6 .*" + expected):
        checkpointer.restore_latest(_abstract(new_state))
    checkpointer.close()
    # Not taken for an unreadable checkpoint: nothing falls back, nothing is set aside.
    assert "unreadable" not in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3", "6"]


def test_unreadable_checkpoints_are_set_aside_and_their_steps_saved_again(tmp_path, capsys):
    _saved(tmp_path)
    _truncate(tmp_path / "6")
    checkpointer = _checkpointer(tmp_path)
    step, state, data = checkpointer.restore_latest(_abstract(_state()))
    assert (step, data) == (3, {"iterator": "at 3"})
    np.testing.assert_array_equal(np.asarray(state["params"]["w"]), 2.0)
    assert "set the unreadable checkpoint step 6 aside" in capsys.readouterr().out
    assert checkpointer.steps() == [3]
    # The run re-trains step 6 and saves it again (today: StepAlreadyExistsError when forced,
    # silently skipped otherwise).
    assert checkpointer.save(6, _state(), {"iterator": "again"}, force=True)
    checkpointer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[:2] == ["3", "6"] and len(names) == 3
    assert names[2].startswith("6.unreadable-")
    assert _checkpointer(tmp_path).restore_latest(_abstract(_state()))[2] == {"iterator": "again"}
