"""The resumable record of a run: ``samples.jsonl`` (append-only) and ``run_config.json``.

``samples.jsonl`` holds one JSON object per (problem id, sample index). Lines are appended a
batch at a time, then flushed and fsync-ed, so a killed run loses at most the batch in flight.
On start, :func:`open_samples` reads back the finished pairs and cuts off a torn last line, so
new lines never join a fragment.

``run_config.json`` records the generation settings of the run; a restart with different
generation settings is refused (:class:`ConfigMismatchError`) instead of mixing two runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

SAMPLES_FILE = "samples.jsonl"
RUN_CONFIG_FILE = "run_config.json"


class ConfigMismatchError(ValueError):
    """The output directory holds a run made with different generation settings."""


def check_or_write_run_config(output_dir: Path, generation: dict, other: dict) -> None:
    """Writes ``run_config.json``, or checks that an existing one has the same ``generation``.

    Args:
        generation: settings that determine the samples (compared on resume).
        other: settings that do not (mesh, grader workers...): recorded, never compared.
    """
    path = output_dir / RUN_CONFIG_FILE
    if path.is_file():
        stored = json.loads(path.read_text())["generation"]
        diffs = {key: (stored.get(key), generation.get(key))
                 for key in sorted(set(stored) | set(generation))
                 if stored.get(key) != generation.get(key)}
        if diffs:
            lines = "\n".join(f"  --{key}: stored {old!r}, now {new!r}"
                              for key, (old, new) in diffs.items())
            raise ConfigMismatchError(
                f"{output_dir} holds a run with different generation flags; rerun with the "
                f"stored values or use another --output_dir:\n{lines}")
    else:
        output_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"generation": generation, "other": other},
                                        indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)


def read_samples(path: Path) -> list[dict]:
    """The records of a samples file; a torn (unterminated) last line is ignored."""
    if not path.is_file():
        return []
    *complete_lines, _torn_tail = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in complete_lines if line.strip()]


def open_samples(path: Path) -> set[tuple[str, int]]:
    """(problem id, sample index) pairs already in ``path``; cuts a torn last line off the file."""
    if not path.is_file():
        return set()
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
            os.fsync(handle.fileno())
    return {(record["id"], record["sample"]) for record in read_samples(path)}


def append_samples(path: Path, records: Iterable[dict]) -> None:
    """Appends ``records`` as JSON lines, then flushes and fsyncs."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
