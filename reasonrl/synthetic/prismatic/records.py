"""Reading the JSONL records the prismatic commands take (one JSON object a line)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from reasonrl.errors import ReasonRLError
from reasonrl.workdir.fingerprint import files_sha256


class RecordFileError(ReasonRLError, ValueError):
    """A records file that is missing or has a bad line (the message names file:line)."""


def load_records(
    path: str | Path, *, flag: str, fields: Sequence[tuple[str, str]], id_field: str | None
) -> tuple[list[str], list[dict]]:
    """(ids, records) of a JSONL file, in file order.

    Args:
        flag: the flag that named the file (``--data``), for the messages.
        fields: (field, flag that sets it) pairs every record must hold as a non-empty string.
        id_field: field with a unique string or integer id; None: the 1-based line number.

    Raises:
        RecordFileError: naming ``path:line`` for a line that is not a JSON object, lacks a
            field, has a non-string field or repeats an id; a missing or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordFileError(f"{flag}: file not found: {str(path)!r}")
    ids, records, first_line = [], [], {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError as error:
            raise RecordFileError(f"{where}: not a JSON line ({error})") from None
        if not isinstance(record, dict):
            raise RecordFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for name, name_flag in fields + ([(id_field, "--id_field")] if id_field else []):
            if name not in record:
                raise RecordFileError(
                    f"{where}: no field {name!r} (it has {sorted(record)}); set {name_flag}"
                )
        for name, _ in fields:
            if not isinstance(record[name], str) or not record[name].strip():
                raise RecordFileError(f"{where}: field {name!r} must be a non-empty string")
        record_id = record[id_field] if id_field else number
        if isinstance(record_id, bool) or not isinstance(record_id, (str, int)):
            raise RecordFileError(f"{where}: field {id_field!r} must be a string or an integer")
        record_id = str(record_id)
        if record_id in first_line:
            raise RecordFileError(f"{where}: id {record_id!r} repeats line {first_line[record_id]}")
        first_line[record_id] = number
        ids.append(record_id)
        records.append(record)
    if not records:
        raise RecordFileError(f"{flag}: {path} holds no records")
    return ids, records


def file_digest(path: str | Path) -> str:
    """sha256 of a data file (detects an edited file on resume and between commands)."""
    return files_sha256([Path(path)])
