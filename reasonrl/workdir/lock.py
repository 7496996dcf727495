"""An output directory belongs to one run: an exclusive lock file that names its holder.

    with DirectoryLock(workdir, purpose="reasonrl.main"):
        ...                                   # a second run on `workdir` refuses at start

The lock is a file `<dir>/.reasonrl.lock` created with O_CREAT | O_EXCL (atomic on local and
network file systems alike) holding the holder's host, pid, process start time, start date and
command line. A second run finds it and stops with `DirectoryLockedError` naming the holder.
A lock left by a process that no longer exists on this host (killed with SIGKILL, a crashed
machine rebooted) is stale: it is taken over with a warning. A lock held from another host cannot
be checked from here; the error says how to remove it if that run is gone. Released (the file
removed) when the block exits, however it exits, unless another run has taken it over.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import sys
import time
from pathlib import Path

from absl import logging

from reasonrl.errors import ReasonRLError

LOCK_FILE = ".reasonrl.lock"
UNREADABLE_PID = -1


class DirectoryLockedError(ReasonRLError, RuntimeError):
    """Another live run holds the directory's lock."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22), to
    tell a live holder from a new process that reused its pid; None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return start is None or _process_start(pid) in (None, start)


@dataclasses.dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: written into the lock file as JSON."""

    host: str
    pid: int
    process_start: str | None
    started: str
    command: str

    @classmethod
    def this_process(cls) -> LockHolder:
        return cls(
            socket.gethostname(),
            os.getpid(),
            _process_start(os.getpid()),
            datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            " ".join(sys.argv)[:500],
        )

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}: {self.command}"

    def is_stale(self) -> bool:
        """True when the holder is known to be gone: a dead process on this host, or a lock
        file left unreadable by a process that died while writing it."""
        if self.pid == UNREADABLE_PID:
            return True
        return self.host == socket.gethostname() and not _alive(self.pid, self.process_start)


class DirectoryLock:
    """Exclusive ownership of `directory` (created if needed) by this process.

    Args:
      directory: the run's output directory (a workdir, an eval's output dir...).
      purpose: what holds it, for messages (e.g. "the job", "the eval").
      lock_name: the lock file's name inside `directory` (one directory can hold the outputs
        of several tools, e.g. a distillation JSONL's folder: name the lock after the output).
    """

    def __init__(
        self, directory: str | Path, *, purpose: str = "a run", lock_name: str = LOCK_FILE
    ):
        self.directory = Path(directory)
        self.path = self.directory / lock_name
        self.purpose = purpose
        self.holder: LockHolder | None = None

    def acquire(self) -> DirectoryLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        me = LockHolder.this_process()
        for _ in range(3):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(handle, "w") as file:
                json.dump(dataclasses.asdict(me), file)
                file.flush()
                os.fsync(file.fileno())
            self.holder = me
            return self
        raise DirectoryLockedError(f"{self.directory}: could not take the lock {self.path}")

    def _take_over_if_stale(self) -> None:
        holder = read_holder(self.path)
        if holder is None:  # vanished, or being written this instant: try again
            time.sleep(0.05)
            return
        if not holder.is_stale():
            raise DirectoryLockedError(
                f"{self.directory} is in use by another run ({holder.describe()}); wait for it "
                f"to finish or use another directory (if that run is gone, delete {self.path})"
            )
        logging.warning("taking over the stale lock of a run that is gone (%s)", holder.describe())
        print(
            f"WARNING: {self.directory}: taking over the lock of a run that is gone "
            f"({holder.describe()})",
            file=sys.stderr,
            flush=True,
        )
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def release(self) -> None:
        """Removes the lock file if it is still this process's."""
        if self.holder is not None and read_holder(self.path) == self.holder:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self.holder = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def read_holder(path: str | Path) -> LockHolder | None:
    """The holder recorded in a lock file; None if it is missing or being written right now.
    Content that stays unreadable for a second (a run died while writing it) reads as a holder
    with pid UNREADABLE_PID, which is stale."""
    path = Path(path)
    try:
        fields = json.loads(path.read_text())
        return LockHolder(**fields)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        try:
            if time.time() - path.stat().st_mtime < 1.0:
                return None
        except FileNotFoundError:
            return None
        return LockHolder("?", UNREADABLE_PID, None, "?", "an unreadable lock file")
