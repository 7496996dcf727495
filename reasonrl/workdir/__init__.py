"""A run's directory: owned by one run (`lock`), written without torn files (`files`), and
fingerprinted so that a rerun never silently reuses results made from other inputs
(`fingerprint`)."""

from reasonrl.workdir.files import (
    atomic_save_figure,
    atomic_write_json,
    atomic_write_text,
    naming_errors,
    new_figure,
)
from reasonrl.workdir.fingerprint import (
    FINGERPRINT_FILE,
    RESULT_NEUTRAL_FIELDS,
    FingerprintMismatchError,
    ResultDir,
    file_identity,
    read_fingerprint,
    reconcile,
    record,
    stage_fingerprint,
    tokenizer_fingerprint,
    write_fingerprint,
)
from reasonrl.workdir.lock import LOCK_FILE, DirectoryLock, DirectoryLockedError, LockHolder

__all__ = [
    "FINGERPRINT_FILE",
    "LOCK_FILE",
    "RESULT_NEUTRAL_FIELDS",
    "DirectoryLock",
    "DirectoryLockedError",
    "FingerprintMismatchError",
    "LockHolder",
    "ResultDir",
    "atomic_save_figure",
    "new_figure",
    "atomic_write_json",
    "atomic_write_text",
    "naming_errors",
    "file_identity",
    "read_fingerprint",
    "reconcile",
    "record",
    "stage_fingerprint",
    "tokenizer_fingerprint",
    "write_fingerprint",
]
