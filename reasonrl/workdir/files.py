"""Writes that are never torn: a reader sees the old file or the new one, never a fragment.

Summaries, DONE markers, run configs and fingerprints go through `atomic_write_text` /
`atomic_write_json`: written to a temporary file beside the target, flushed and fsync-ed, then
renamed over it (os.replace is atomic on POSIX). A full or read-only disk raises the OSError
(naming the file) and leaves the target as it was, with no temporary file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replaces `path` with `text` (UTF-8) atomically; creates its directory if needed."""
    path = Path(path)
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
