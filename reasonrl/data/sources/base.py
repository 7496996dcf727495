"""Shared pieces of record sources: the error types, a thread-safe byte-range file reader and
the memory map every file source indexes.

A record source is a grain random-access data source (`__len__`, `__getitem__`) whose records
are dicts of plain Python values (str, int, float, lists, dicts).
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from reasonrl.errors import ReasonRLError


class MalformedRecordError(ReasonRLError, ValueError):
    """A record that cannot be parsed or used; `location` names the file and line (or record
    index), `problem` what is wrong with it."""

    def __init__(self, location: str, problem: str):
        super().__init__(f"{location}: {problem}")
        self.location = location
        self.problem = problem

    def __reduce__(self):  # picklable, e.g. out of a worker process
        return type(self), (self.location, self.problem)


class MissingFieldError(MalformedRecordError, KeyError):
    """A record without a field the task reads (a KeyError too, as that error always was)."""

    def __str__(self) -> str:  # KeyError would repr() the message.
        return str(self.args[0])


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


@contextlib.contextmanager
def mapped(path: str) -> Iterator[bytes | mmap.mmap]:
    """The bytes of `path`, memory-mapped (an empty file, which cannot be mapped, is b"")."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield data
