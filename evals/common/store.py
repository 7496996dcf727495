"""The resumable record of a run: ``samples.jsonl`` (append-only) and ``run_config.json``.

``samples.jsonl`` holds one JSON object per (problem id, sample index). Lines are appended a
batch at a time, then flushed and fsync-ed, so a killed run loses at most the batch in flight.
On start, :func:`open_samples` reads back the finished pairs and cuts off a torn last line, so
new lines never join a fragment.

``run_config.json`` records the generation settings of the run; a restart with different
generation settings is refused (``reasonrl.sampling.run_store.ConfigMismatchError``) instead of
mixing two runs. The file helpers and the check are :mod:`reasonrl.sampling.run_store`'s, which
distillation uses too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from reasonrl.sampling import run_store
from reasonrl.workdir import atomic_write_text

SAMPLES_FILE = "samples.jsonl"
RUN_CONFIG_FILE = "run_config.json"


def check_or_write_run_config(output_dir: Path, generation: dict, other: dict) -> None:
    """Writes ``run_config.json``, or checks that an existing one has the same ``generation``.

    Args:
        generation: settings that determine the samples (compared on resume).
        other: settings that do not (mesh, grader workers...): recorded, never compared.

    Raises:
        run_store.ConfigMismatchError: naming every generation flag that differs.
    """
    path = output_dir / RUN_CONFIG_FILE
    if path.is_file():
        run_store.check_settings(
            json.loads(path.read_text())["generation"], generation,
            what=f"{output_dir} holds a run with different generation flags",
            remedy="use another --output_dir")
    else:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"generation": generation, "other": other},
                                                    indent=2, sort_keys=True) + "\n")


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
    run_store.cut_torn_tail(path)
    return {(record["id"], record["sample"]) for record in read_samples(path)}


def append_samples(path: Path, records: Iterable[dict]) -> None:
    """Appends ``records`` as JSON lines, then flushes and fsyncs."""
    run_store.append_synced(path, run_store.json_lines(records))
