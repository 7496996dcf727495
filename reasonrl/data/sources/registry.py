"""Source types by name, and `make_source` to build one from a spec section."""

from __future__ import annotations

from typing import Any, Protocol

from reasonrl.data.sources.array_record import ArrayRecordSource
from reasonrl.data.sources.jsonl import JsonlSource
from reasonrl.data.sources.text import TextSource
from reasonrl.data.sources.tfds import TfdsSource
from reasonrl.data.spec import SpecError, parse_typed_section


class RecordSource(Protocol):
    """A grain random-access data source of dict records."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


# `type` value of a source spec -> source class (with a nested `Config` and `from_config`).
SOURCE_TYPES: dict[str, Any] = {
    "jsonl": JsonlSource,
    "text": TextSource,
    "array_record": ArrayRecordSource,
    "tfds": TfdsSource,
}


def make_source(section: Any, where: str = "spec.source") -> RecordSource:
    """Builds the source described by `section`: `{"type": <SOURCE_TYPES key>, **options}`.

    Raises:
      SpecError: naming `where` (or the field below it) on a bad option, a missing or empty
        file, a dataset that does not open, or a source without any record.
      MalformedRecordError: naming "path:line" of a JSON Lines line that does not parse.
    """
    source_class, config = parse_typed_section(SOURCE_TYPES, section, where)
    try:
        source = source_class.from_config(config)
    except SpecError as error:
        raise SpecError(f"{where}: {error}") from None
    if len(source) == 0:
        raise SpecError(f"{where}: no records in {source!r}")
    return source
