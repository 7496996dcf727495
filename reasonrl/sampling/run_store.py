"""Files of a resumable sampling run, shared by the eval binaries and distillation.

A run stores the settings that decide its output before it writes any; a restart compares them
with its own (:func:`check_settings`) and refuses to mix two runs in one output, naming every
setting that differs (:class:`ConfigMismatchError`). Outputs grow by appending whole lines that
are flushed and fsync-ed (:func:`append_synced`); a kill can leave at most a torn last line,
which :func:`cut_torn_tail` removes before the run appends again.

Settings introduced after runs were stored (:data:`ADDED_SETTINGS`) compare equal to their
default when a stored record lacks them: a run started before they existed still resumes.
The record's layout is the caller's (``run_config.json`` for the evals, the first line of the
state file for distillation).
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

# Setting -> the value every run stored before the setting existed was made with.
ADDED_SETTINGS = types.MappingProxyType({"truncate_prompt": "none"})


class ConfigMismatchError(ValueError):
    """The output holds a run made with different settings (the message names each one)."""


def check_settings(stored: dict, current: dict, *, what: str, remedy: str) -> None:
    """Raises unless ``stored`` and ``current`` (flag name -> value) agree.

    Args:
        what: the start of the message, e.g. "OUT holds a run with different generation flags".
        remedy: what else the user can do besides rerunning with the stored values.

    Raises:
        ConfigMismatchError: ``"{what}; rerun with the stored values or {remedy}:"`` followed by
            one ``  --name: stored X, now Y`` line per differing setting, in name order.
    """
    stored = {**{key: value for key, value in ADDED_SETTINGS.items() if key in current},
              **stored}
    diffs = [(key, stored.get(key), current.get(key)) for key in sorted(set(stored) | set(current))
             if stored.get(key) != current.get(key)]
    if diffs:
        lines = "\n".join(f"  --{key}: stored {old!r}, now {new!r}" for key, old, new in diffs)
        raise ConfigMismatchError(f"{what}; rerun with the stored values or {remedy}:\n{lines}")


def append_synced(path: Path, data: bytes) -> int:
    """Appends ``data`` to ``path``, flushes and fsyncs; returns the file's new size."""
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def json_lines(records) -> bytes:
    """``records`` as UTF-8 JSON lines (non-ASCII characters kept as they are)."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()


def truncate_synced(path: Path, size: int) -> None:
    """Cuts ``path`` to ``size`` bytes and fsyncs."""
    with open(path, "r+b") as handle:
        handle.truncate(size)
        os.fsync(handle.fileno())


def cut_torn_tail(path: Path) -> bytes:
    """Cuts an unterminated last line off ``path``; returns the complete lines left."""
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        truncate_synced(path, len(complete))
    return complete
