"""Parsing of data specs: plain dicts (or ml_collections.ConfigDict) into frozen dataclasses.

Every configurable piece of the data package (a source, a task, a packer, the pipeline itself)
declares its options as a dataclass. `parse_section` turns one section of a spec into that
dataclass and fails early, with the dotted name of the offending field, on an unknown key, a
missing required key or a value of the wrong type. Checks that need more than a type (a file
that must exist, a value from a fixed set) live in the dataclass's `__post_init__`, which
raises `SpecError` through `spec_error`.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from reasonrl.errors import ReasonRLError

ConfigT = TypeVar("ConfigT")


class SpecError(ReasonRLError, ValueError):
    """A data spec that cannot be built; the message names the offending field or path."""


def as_plain_dict(section: Any, where: str) -> dict[str, Any]:
    """Returns `section` as a dict, accepting a Mapping or an ml_collections.ConfigDict."""
    if hasattr(section, "to_dict"):  # ml_collections.ConfigDict / FrozenConfigDict.
        section = section.to_dict()
    if not isinstance(section, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {type(section).__name__}")
    return dict(section)


def _matches_type(value: Any, annotation: Any) -> bool:
    """Whether `value` fits a (simple) resolved type annotation."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches_type(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (tuple, list):
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        return isinstance(value, (tuple, list)) and all(_matches_type(v, item_type) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, Mapping)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    """Readable name of a type annotation, for error messages."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin in (tuple, list):
        return f"list of {_describe(args[0])}" if args else "list"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def parse_section(config_type: type[ConfigT], section: Any, where: str) -> ConfigT:
    """Builds the dataclass `config_type` from one spec section, validating keys and types.

    Args:
      config_type: a dataclass whose fields are the allowed keys of the section.
      section: a Mapping or ConfigDict.
      where: dotted name of the section in the spec (e.g. "spec.source"), used in errors.

    Returns:
      An instance of `config_type`. Sequence fields are converted to tuples.

    Raises:
      SpecError: on unknown keys, missing required keys or values of the wrong type.
    """
    values = as_plain_dict(section, where)
    fields = {f.name: f for f in dataclasses.fields(config_type) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(fields)}")
    missing = [
        name
        for name, field in fields.items()
        if name not in values
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise SpecError(f"{where}: missing required key(s) {missing}")
    hints = typing.get_type_hints(config_type)
    for name, value in values.items():
        if not _matches_type(value, hints[name]):
            raise SpecError(f"{where}.{name}: expected {_describe(hints[name])}, got {value!r}")
        if isinstance(value, list):
            values[name] = tuple(value)
    try:
        return config_type(**values)
    except SpecError as error:
        raise SpecError(f"{where}.{error}") from None


def spec_error(field_name: str, message: str) -> SpecError:
    """An error raised from a config's `__post_init__`; `parse_section` prefixes the section."""
    return SpecError(f"{field_name}: {message}")


def require_existing_file(field_name: str, path: str) -> None:
    """Raises SpecError naming `field_name` and `path` unless `path` is an existing file that is
    not empty (a data file without a byte has no record to train on)."""
    if not os.path.isfile(path):
        raise spec_error(field_name, f"file not found: {path!r}")
    if os.path.getsize(path) == 0:
        raise spec_error(field_name, f"file is empty: {path!r}")


def parse_typed_section(registry: Mapping[str, Any], section: Any, where: str) -> tuple[Any, Any]:
    """Parses `{"type": name, **options}` against `registry[name].Config`.

    Returns:
      (registry[name], parsed options as an instance of registry[name].Config).
    """
    options = as_plain_dict(section, where)
    type_name = options.pop("type", None)
    if type_name not in registry:
        raise SpecError(f"{where}.type: got {type_name!r}; expected one of {sorted(registry)}")
    registered = registry[type_name]
    return registered, parse_section(registered.Config, options, where)
