"""The resumable on-disk form of a gradient-feature run: a directory of .npy shards.

    DIR/state.jsonl          line 1 {"config": {...}} (every setting that decides the features,
                             the proxy's weights and the data by sha256), then one line per
                             finished batch: {"batch", "ids", "valid", "truncated"}
    DIR/features-00000.npy   float32 [rows of batch 0, d] unit features (zero rows: invalid)
    DIR/summary.json         written at the end (atomically)

A batch's shard is written (to a temporary name, fsync-ed, renamed) before its state line, so a
killed run resumes at the first batch without a state line and recomputes it; a rerun with other
settings is refused (``run_store.ConfigMismatchError``, every difference named).
:func:`load_features` reads a finished directory back.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from reasonrl.errors import ReasonRLError
from reasonrl.sampling import run_store
from reasonrl.workdir import atomic_write_text, naming_errors

STATE_NAME = "state.jsonl"
SUMMARY_NAME = "summary.json"


class FeatureStoreError(ReasonRLError, ValueError):
    """A feature directory that cannot be resumed or read (the message names file:line)."""


def shard_path(directory: Path, batch: int) -> Path:
    return Path(directory) / f"features-{batch:05d}.npy"


def _read_state(directory: Path) -> tuple[dict | None, list[dict]]:
    path = Path(directory) / STATE_NAME
    if not path.is_file():
        return None, []
    lines = [line for line in run_store.cut_torn_tail(path).split(b"\n") if line.strip()]
    entries = []
    for number, line in enumerate(lines, start=1):
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        expected = "config" if number == 1 else "batch"
        if not isinstance(value, dict) or expected not in value:
            raise FeatureStoreError(
                f"{path}:{number}: not a feature state line (expected a JSON object with "
                f"{expected!r}); delete {directory} to start over"
            )
        if number > 1 and value["batch"] != number - 2:
            raise FeatureStoreError(f"{path}:{number}: expected batch {number - 2}")
        entries.append(value)
    if not entries:
        return None, []
    return entries[0]["config"], entries[1:]


def open_store(directory: str | Path, config: dict) -> list[dict]:
    """Starts or resumes a feature directory; returns its finished batch entries.

    Raises:
        run_store.ConfigMismatchError: the directory holds features made with other settings.
        FeatureStoreError: a state line is not what it should be, or a shard is missing.
    """
    directory = Path(directory)
    stored, entries = _read_state(directory)
    if stored is None:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / STATE_NAME, json.dumps({"config": config}) + "\n")
        return []
    run_store.check_settings(
        stored,
        config,
        what=f"{directory} holds features made with different settings",
        remedy="choose another --output",
        source=str(directory / STATE_NAME),
    )
    for entry in entries:
        if not shard_path(directory, entry["batch"]).is_file():
            raise FeatureStoreError(
                f"{shard_path(directory, entry['batch'])} is missing but {STATE_NAME} records "
                f"batch {entry['batch']}; delete {directory} to start over"
            )
    return entries


def append_batch(
    directory: Path, batch: int, ids: list[str], features: np.ndarray, valid, truncated
) -> dict:
    """Writes one batch's shard (atomically), then its state line; returns the entry."""
    path = shard_path(directory, batch)
    temporary = path.with_name(path.name + ".tmp")
    with naming_errors(temporary), open(temporary, "wb") as handle:
        np.save(handle, np.asarray(features, np.float32))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    entry = {
        "batch": batch,
        "ids": list(ids),
        "valid": [bool(v) for v in valid],
        "truncated": [bool(t) for t in truncated],
    }
    run_store.append_synced(Path(directory) / STATE_NAME, (json.dumps(entry) + "\n").encode())
    return entry


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """A feature directory, read back.

    Attributes:
        config: the settings it was made with.
        ids: example ids, in data order.
        features: float32 [N, d] unit features (zero rows where not valid).
        valid: bool [N], the example had a response token (so a gradient).
        truncated: bool [N], the example was cut at max_length.
    """

    config: dict
    ids: list[str]
    features: np.ndarray
    valid: np.ndarray
    truncated: np.ndarray


def load_features(directory: str | Path) -> FeatureSet:
    """Every batch of a feature directory (finished or not: what is there).

    Raises:
        FeatureStoreError: no state file (not a feature directory), or no batch yet.
    """
    directory = Path(directory)
    config, entries = _read_state(directory)
    if config is None or not entries:
        raise FeatureStoreError(
            f"--features: {directory} holds no finished feature batch ({STATE_NAME} missing or "
            f"empty); run `features` first"
        )
    shards = [np.load(shard_path(directory, entry["batch"])) for entry in entries]
    return FeatureSet(
        config,
        [i for entry in entries for i in entry["ids"]],
        np.concatenate(shards),
        np.asarray([v for entry in entries for v in entry["valid"]], bool),
        np.asarray([t for entry in entries for t in entry["truncated"]], bool),
    )


def write_summary(directory: Path, summary: dict) -> Path:
    return atomic_write_text(
        Path(directory) / SUMMARY_NAME, json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )
