"""The resumable record of a run: ``samples.jsonl`` (append-only) and ``run_config.json``.

``samples.jsonl`` holds one JSON object per (problem id, sample index). Lines are appended a
batch at a time, then flushed and fsync-ed, so a killed run loses at most the batch in flight.
On start, :func:`open_samples` reads back the finished pairs and cuts off a torn last line, so
new lines never join a fragment. A complete line that is not a sample record (edited, a disk
fault) or repeats a pair stops the run with :class:`OutputFileError` naming ``file:line``:
delete that line (the rerun samples its pair again) or the output directory.

``run_config.json`` records the generation settings of the run (written atomically); a restart
with different generation settings is refused (``reasonrl.sampling.run_store.ConfigMismatchError``)
instead of mixing two runs. The file helpers and the check are
:mod:`reasonrl.sampling.run_store`'s, which distillation uses too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from reasonrl.errors import ReasonRLError
from reasonrl.sampling import run_store
from reasonrl.workdir import atomic_write_text

SAMPLES_FILE = "samples.jsonl"
RUN_CONFIG_FILE = "run_config.json"
# Fields of every samples.jsonl record (a --truncate_prompt=left run adds prompt_truncated).
RECORD_FIELDS = (
    "id",
    "sample",
    "completion",
    "answer",
    "correct",
    "status",
    "num_tokens",
    "finish_reason",
)


class OutputFileError(ReasonRLError, ValueError):
    """A file of an eval's output directory that cannot be read back (names file:line)."""


def _read_generation(path: Path) -> dict:
    """The stored generation settings of ``run_config.json``."""
    try:
        generation = json.loads(path.read_bytes())["generation"]
    except (ValueError, KeyError, TypeError):
        generation = None
    if not isinstance(generation, dict):
        raise OutputFileError(
            f"{path}: not a run config (a JSON object with a 'generation' "
            f"object); delete the output directory to start over"
        )
    return generation


def check_or_write_run_config(output_dir: Path, generation: dict, other: dict) -> None:
    """Writes ``run_config.json``, or checks that an existing one has the same ``generation``.

    Args:
        generation: settings that determine the samples (compared on resume).
        other: settings that do not (mesh, grader workers...): recorded, never compared.

    Raises:
        run_store.ConfigMismatchError: naming every generation flag that differs.
        OutputFileError: an existing run_config.json does not parse.
    """
    path = output_dir / RUN_CONFIG_FILE
    if path.is_file():
        run_store.check_settings(
            _read_generation(path),
            generation,
            what=f"{output_dir} holds a run with different generation flags",
            remedy="use another --output_dir",
            source=str(path),
        )
    else:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            path,
            json.dumps({"generation": generation, "other": other}, indent=2, sort_keys=True) + "\n",
        )


def _bad_line(path: Path, number: int, problem: str) -> OutputFileError:
    return OutputFileError(
        f"{path}:{number}: {problem}; delete this line (a rerun samples it "
        f"again) or the output directory to start over"
    )


def _parse_record(path: Path, number: int, line: bytes, fields=RECORD_FIELDS) -> dict:
    """The sample record on line ``number`` of ``path`` (it must hold ``fields``)."""
    try:
        record = json.loads(line)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise _bad_line(path, number, f"not a JSON line ({error})") from None
    if not isinstance(record, dict):
        raise _bad_line(path, number, f"not a sample record (a {type(record).__name__})")
    missing = [name for name in fields if name not in record]
    if missing:
        raise _bad_line(path, number, f"not a sample record (no {', '.join(missing)})")
    return record


def read_samples(path: Path, fields=RECORD_FIELDS) -> list[dict]:
    """The records of a samples file; a torn (unterminated) last line is ignored.

    ``fields``: what every record holds (the diversity eval's records have no grades).

    Raises:
        OutputFileError: naming ``file:line`` of a complete line that is not a sample record or
            repeats an (id, sample) pair (two runs wrote the directory).
    """
    if not path.is_file():
        return []
    *complete_lines, _torn_tail = path.read_bytes().split(b"\n")
    records, first_line = [], {}
    for number, line in enumerate(complete_lines, start=1):
        if not line.strip():
            continue
        record = _parse_record(path, number, line, fields)
        pair = (record["id"], record["sample"])
        if pair in first_line:
            raise _bad_line(
                path,
                number,
                f"problem {pair[0]!r} sample {pair[1]} repeats line {first_line[pair]}",
            )
        first_line[pair] = number
        records.append(record)
    return records


def open_samples(path: Path, fields=RECORD_FIELDS) -> set[tuple[str, int]]:
    """(problem id, sample index) pairs already in ``path``; cuts a torn last line off the file."""
    if not path.is_file():
        return set()
    run_store.cut_torn_tail(path)
    return {(record["id"], record["sample"]) for record in read_samples(path, fields)}


def append_samples(path: Path, records: Iterable[dict]) -> None:
    """Appends ``records`` as JSON lines, then flushes and fsyncs."""
    run_store.append_synced(path, run_store.json_lines(records))
