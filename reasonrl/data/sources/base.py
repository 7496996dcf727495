"""Shared pieces of record sources: the error types and a thread-safe byte-range file reader.

A record source is a grain random-access data source (`__len__`, `__getitem__`) whose records
are dicts of plain Python values (str, int, float, lists, dicts).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


class MalformedRecordError(ValueError):
    """A record that cannot be parsed; `location` names the file and line (or record index)."""

    def __init__(self, location: str, problem: str):
        super().__init__(f"{location}: {problem}")
        self.location = location


class MalformedRecordWarning(UserWarning):
    """Malformed records were skipped because the source was configured to skip them."""


class ByteRangeFile:
    """Reads byte ranges [start, start + length) of one file; safe to share between threads.

    Reads use `os.pread`, which has no shared file position. Pickling keeps only the path (the
    copy reopens the file), so a source holding one can be sent to worker processes.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)

    def read(self, start: int, length: int) -> bytes:
        return os.pread(self._fd, length, start)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


def line_number_at(data: bytes | memoryview, offset: int) -> int:
    """1-based line number of byte `offset` in `data`."""
    return int(np.count_nonzero(np.frombuffer(data[:offset], dtype=np.uint8) == ord("\n"))) + 1
