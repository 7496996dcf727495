"""Writes that are never torn: a reader sees the old file or the new one, never a fragment.

Summaries, DONE markers, run configs and fingerprints go through `atomic_write_text` /
`atomic_write_json`: written to a temporary file beside the target, flushed and fsync-ed, then
renamed over it (os.replace is atomic on POSIX). A full or read-only disk raises the OSError
(naming the file) and leaves the target as it was, with no temporary file behind.
`naming_errors(path)` gives any other write the same naming (an fsync that fails names no file).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def naming_errors(path: str | Path):
    """Re-raises an OSError that names no file (a failed write or fsync: a full disk) as one
    naming `path`, so that the one-line report says which file."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replaces `path` with `text` (UTF-8) atomically; creates its directory if needed."""
    path = Path(path)
    with naming_errors(path):
        return _replace_with(path, text)


def _replace_with(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, value: Any, *, indent: int | None = 2) -> Path:
    """`value` as JSON (keys sorted, one trailing newline), written atomically."""
    return atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=True) + "\n")


def new_figure(**figure_kwargs):
    """A matplotlib `Figure` drawn without pyplot: no backend is selected or switched (a
    notebook that runs a job keeps its inline plots), and nothing needs closing."""
    from matplotlib.figure import Figure  # imported here: only plotting callers need matplotlib

    return Figure(**figure_kwargs)


def atomic_save_figure(figure, path: str | Path) -> Path:
    """Saves a matplotlib `figure` as a PNG to a temporary file beside `path` and renames it
    over `path` (an OSError names `path`). Figures from pyplot are closed afterwards."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with naming_errors(path):
            figure.savefig(temporary, format="png", dpi=100)
            os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
        if figure.canvas.manager is not None:  # a pyplot figure: release it
            import matplotlib.pyplot as plt

            plt.close(figure)
    return path
