"""Files of a resumable sampling run, shared by the eval binaries and distillation.

A run stores the settings that decide its output before it writes any; a restart compares them
with its own (:func:`check_settings`) and refuses to mix two runs in one output, naming every
setting that differs (:class:`ConfigMismatchError`). Outputs grow by appending whole lines that
are flushed and fsync-ed (:func:`append_synced`); a kill can leave at most a torn last line,
which :func:`cut_torn_tail` removes before the run appends again. Whole files (settings,
summaries) are replaced atomically (:func:`reasonrl.workdir.atomic_write_text`): a full or
read-only disk leaves the old file, never a torn or empty one, and raises an OSError that names
the file.

Records stored by older versions still resume:

* :data:`ADDED_SETTINGS`, settings introduced later, compare equal to the value every older run
  was made with;
* :data:`LEGACY_VALUES`: values spelled differently before (``limit`` 0 meant every problem; it
  is None now);
* :data:`UNRECORDED_SETTINGS` (``checkpoint_sha256``, the digest of the checkpoint's weights)
  cannot be known for an older run: it is accepted with a warning that it was not checked.

The record's layout is the caller's (``run_config.json`` for the evals, the first line of the
state file for distillation).
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

from absl import logging

from reasonrl.errors import ReasonRLError
from reasonrl.workdir import naming_errors

# Setting -> the value every run stored before the setting existed was made with.
ADDED_SETTINGS = types.MappingProxyType({"truncate_prompt": "none"})
# Setting -> what a stored value of an older version means today.
LEGACY_VALUES = types.MappingProxyType(
    {
        "limit": lambda value: None if isinstance(value, int) and value <= 0 else value,
    }
)
# Setting older runs did not record and whose value cannot be known -> what goes unchecked.
UNRECORDED_SETTINGS = types.MappingProxyType({"checkpoint_sha256": "the checkpoint's weights"})


class ConfigMismatchError(ReasonRLError, ValueError):
    """The output holds a run made with different settings (the message names each one)."""


def _as_stored_today(stored: dict, current: dict, source: str) -> dict:
    """``stored`` as this version would have written it (see the module docstring)."""
    upgraded = {**{key: value for key, value in ADDED_SETTINGS.items() if key in current}, **stored}
    for key, upgrade in LEGACY_VALUES.items():
        if key in upgraded:
            upgraded[key] = upgrade(upgraded[key])
    for key, unchecked in UNRECORDED_SETTINGS.items():
        if key in current and key not in upgraded:
            logging.warning(
                "%s was written before runs recorded %s: resuming it without "
                "checking %s (start a new output if they may have changed)",
                source,
                key,
                unchecked,
            )
            upgraded[key] = current[key]
    return upgraded


def check_settings(
    stored: dict, current: dict, *, what: str, remedy: str, source: str = "the stored run"
) -> None:
    """Raises unless ``stored`` and ``current`` (flag name -> value) agree.

    Args:
        what: the start of the message, e.g. "OUT holds a run with different generation flags".
        remedy: what else the user can do besides rerunning with the stored values.
        source: where ``stored`` was read, for the warning about an unrecorded setting.

    Raises:
        ConfigMismatchError: ``"{what}; rerun with the stored values or {remedy}:"`` followed by
            one ``  --name: stored X, now Y`` line per differing setting, in name order.
    """
    stored = _as_stored_today(stored, current, source)
    diffs = [
        (key, stored.get(key), current.get(key))
        for key in sorted(set(stored) | set(current))
        if stored.get(key) != current.get(key)
    ]
    if diffs:
        lines = "\n".join(f"  --{key}: stored {old!r}, now {new!r}" for key, old, new in diffs)
        raise ConfigMismatchError(f"{what}; rerun with the stored values or {remedy}:\n{lines}")


def append_synced(path: Path, data: bytes) -> int:
    """Appends ``data`` to ``path``, flushes and fsyncs; returns the file's new size."""
    with naming_errors(path), open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def json_lines(records) -> bytes:
    """``records`` as UTF-8 JSON lines (non-ASCII characters kept as they are)."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()


def truncate_synced(path: Path, size: int) -> None:
    """Cuts ``path`` to ``size`` bytes and fsyncs."""
    with naming_errors(path), open(path, "r+b") as handle:
        handle.truncate(size)
        os.fsync(handle.fileno())


def cut_torn_tail(path: Path) -> bytes:
    """Cuts an unterminated last line off ``path``; returns the complete lines left."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        truncate_synced(path, len(complete))
    return complete
