"""Random-access record sources: JSONL, plain text, ArrayRecord and TFDS."""

from reasonrl.data.sources.array_record import ArrayRecordSource
from reasonrl.data.sources.base import (
    MalformedRecordError,
    MalformedRecordWarning,
    MissingFieldError,
)
from reasonrl.data.sources.jsonl import JsonlSource
from reasonrl.data.sources.registry import SOURCE_TYPES, RecordSource, make_source
from reasonrl.data.sources.text import TextSource
from reasonrl.data.sources.tfds import TfdsSource

__all__ = [
    "SOURCE_TYPES",
    "ArrayRecordSource",
    "JsonlSource",
    "MalformedRecordError",
    "MalformedRecordWarning",
    "MissingFieldError",
    "RecordSource",
    "TextSource",
    "TfdsSource",
    "make_source",
]
