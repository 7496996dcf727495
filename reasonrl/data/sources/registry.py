"""Source types by name, and `make_source` to build one from a spec section."""

from __future__ import annotations

from typing import Any, Protocol

from reasonrl.data.sources.array_record import ArrayRecordSource
from reasonrl.data.sources.jsonl import JsonlSource
from reasonrl.data.sources.text import TextSource
from reasonrl.data.sources.tfds import TfdsSource
from reasonrl.data.spec import SpecError, as_plain_dict, parse_section


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
    """Builds the source described by `section`: `{"type": <SOURCE_TYPES key>, **options}`."""
    options = as_plain_dict(section, where)
    source_type = options.pop("type", None)
    if source_type not in SOURCE_TYPES:
        raise SpecError(f"{where}.type: got {source_type!r}; expected one of {sorted(SOURCE_TYPES)}")
    source_class = SOURCE_TYPES[source_type]
    return source_class.from_config(parse_section(source_class.Config, options, where))
