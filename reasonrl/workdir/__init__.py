"""A run's directory: owned by one run (`lock`), written without torn files (`files`), and
fingerprinted so that a rerun never silently reuses results made from other inputs
(`fingerprint`)."""

from reasonrl.workdir.files import atomic_write_json, atomic_write_text
from reasonrl.workdir.lock import LOCK_FILE, DirectoryLock, DirectoryLockedError, LockHolder

__all__ = ["LOCK_FILE", "DirectoryLock", "DirectoryLockedError", "LockHolder",
           "atomic_write_json", "atomic_write_text"]
