"""Fingerprints: what a result in a workdir was made from, so that a rerun never silently reuses
results made from other inputs.

Each result directory holds `fingerprint.json` (written atomically), a JSON object of the
inputs that determine the result plus their `digest` (sha256 of the canonical JSON of the rest):

    <stage>/fingerprint.json      (`stage_fingerprint`)
      config         the resolved stage config: every default filled in, the objective's
                     options and the loop's section (e.g. `rl`) as they run, minus the fields
                     that do not change the result (`RESULT_NEUTRAL_FIELDS`: how often it logs,
                     evaluates and checkpoints, how many checkpoints it keeps, async saves, the
                     mesh: a preempted job resumes on another slice shape, and the sampler's
                     decode slots, which change speed, not samples);
      tokenizer      {"sha256": ...} of the tokenizer's files (`files_sha256`);
      inputs         the identity of every existing file a path in the `data` / `eval_data`
                     specs names, by its dotted field (`input_files`, `file_identity`);
      init_from      the digest of the `model.init_from` stage's fingerprint (None otherwise),
                     so that a stage made from an earlier stage's other result differs too.
    tokenizer/fingerprint.json    (`tokenizer_fingerprint`, a tokenizer the job trained)
      corpus         the identity of the corpus it was trained on;
      vocab_size     its vocabulary size.

A file's identity is its size and the sha256 of its content. A file larger than
`LARGE_FILE_BYTES` (64 MiB) is not read whole: its identity is its size, its modification time
(ns) and the sha256 of its first and last `EDGE_BYTES` (8 MiB), so that a multi-GB data set costs
16 MiB of reads; touching such a file (a copy without preserved times) therefore changes it.
Paths are part of the config, contents part of `inputs`: moving an input file changes the
fingerprint, as does editing it. Not fingerprinted: the contents of `model.hf_checkpoint`
(its path is in the config) and the code itself.

`reconcile` compares each directory's stored fingerprint with this job's, for every directory
that holds results, and raises ONE `FingerprintMismatchError` listing every differing field as a
dotted path with its stored and new values — before anything trains. `reuse_changed=True`
(`python -m reasonrl.main --reuse_changed`) keeps such results anyway: it warns, and the job
records the new fingerprint (`record`). A directory with results but no fingerprint (made by an
older version) gets this job's fingerprint, with a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from absl import logging

from reasonrl.errors import ReasonRLError
from reasonrl.workdir.files import atomic_write_json

FINGERPRINT_FILE = "fingerprint.json"
RESULT_NEUTRAL_FIELDS = (
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.async_checkpointing",
    "train.eval_every",
    "train.eval_batches",
    "mesh",
    "rl.decode_slots",
)
DATA_SECTIONS = ("data", "eval_data")
LARGE_FILE_BYTES = 64 << 20
EDGE_BYTES = 8 << 20
REUSE_HINT = "--reuse_changed (reuse_changed=True to run_job)"
_MAX_SHOWN = 8  # differing fields shown per directory
_SHA256 = re.compile(r"[0-9a-f]{64}")


class FingerprintMismatchError(ReasonRLError, ValueError):
    """The workdir holds results made from other inputs than this job's."""


def _sha256_of(path: Path, ranges: Iterable[tuple[int, int]]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for start, length in ranges:
            file.seek(start)
            while length > 0:
                chunk = file.read(min(length, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                length -= len(chunk)
    return digest.hexdigest()


def _content_sha256(path: Path) -> str:
    return _sha256_of(path, [(0, path.stat().st_size)])


def file_identity(path: str | Path) -> dict[str, Any]:
    """{"size", "sha256"} of a file; {"size", "mtime_ns", "sha256_first_last_8MiB"} for a file
    over `LARGE_FILE_BYTES`."""
    path = Path(path)
    stat = path.stat()
    if stat.st_size <= LARGE_FILE_BYTES:
        return {"size": stat.st_size, "sha256": _content_sha256(path)}
    edges = [(0, EDGE_BYTES), (stat.st_size - EDGE_BYTES, EDGE_BYTES)]
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256_first_last_8MiB": _sha256_of(path, edges),
    }


def files_sha256(paths: Iterable[str | Path]) -> str:
    """One sha256 for a set of files: the file's own sha256 when there is one, else the sha256
    of their sorted "name sha256" lines (a tokenizer directory)."""
    hashes = sorted((Path(p).name, _content_sha256(Path(p))) for p in paths)
    if len(hashes) == 1:
        return hashes[0][1]
    return hashlib.sha256("".join(f"{name} {sha}\n" for name, sha in hashes).encode()).hexdigest()


def _leaves(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    """(dotted path, leaf) for every leaf of nested dicts and lists."""
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}.{index}")
    else:
        yield prefix, value


def input_files(config: dict) -> dict[str, dict[str, Any]]:
    """The identity of every existing file that a string in `config`'s data specs names, by
    dotted field (e.g. "data.source.path", "eval_data.source.paths.0")."""
    specs = {section: config.get(section) or {} for section in DATA_SECTIONS}
    return {
        field: file_identity(value)
        for field, value in _leaves(specs, "")
        if isinstance(value, str) and value and os.path.isfile(value)
    }


def _without(config: dict, fields: Iterable[str]) -> dict:
    config = json.loads(json.dumps(config, default=str))  # a deep, JSON-normalised copy
    for field in fields:
        *parents, leaf = field.split(".")
        section = config
        for key in parents:
            section = section.get(key) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(leaf, None)
    return config


def with_digest(parts: dict[str, Any]) -> dict[str, Any]:
    """`parts` (JSON-normalised) plus "digest": the sha256 of their canonical JSON."""
    parts = json.loads(json.dumps(parts, default=str))
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return {**parts, "digest": hashlib.sha256(canonical.encode()).hexdigest()}


def stage_fingerprint(
    config: dict, *, tokenizer_files: Iterable[str | Path], init_from: dict | None
) -> dict[str, Any]:
    """The fingerprint of a stage whose resolved config (plain dict) is `config`, trained with
    the tokenizer made of `tokenizer_files`, starting from the stage whose fingerprint is
    `init_from` (None when it starts from a preset or a Hugging Face checkpoint)."""
    return with_digest(
        {
            "config": _without(config, RESULT_NEUTRAL_FIELDS),
            "tokenizer": {"sha256": files_sha256(tokenizer_files)},
            "inputs": input_files(config),
            "init_from": init_from["digest"] if init_from else None,
        }
    )


def tokenizer_fingerprint(
    corpus: str | Path, vocab_size: int, extra_special_tokens: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The fingerprint of a sentencepiece tokenizer trained on `corpus` (with special tokens
    beyond the chat templates', e.g. the thinking markers)."""
    fingerprint = {"corpus": file_identity(corpus), "vocab_size": vocab_size}
    if extra_special_tokens:
        fingerprint["extra_special_tokens"] = list(extra_special_tokens)
    return with_digest(fingerprint)


def read_fingerprint(directory: str | Path) -> dict[str, Any] | None:
    """The fingerprint stored in `directory`, or None when it has none."""
    path = Path(directory) / FINGERPRINT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_fingerprint(directory: str | Path, fingerprint: dict[str, Any]) -> Path:
    return atomic_write_json(Path(directory) / FINGERPRINT_FILE, fingerprint)


def _show(value: Any) -> str:
    if isinstance(value, str) and _SHA256.fullmatch(value):
        return value[:12] + "…"
    return json.dumps(value)


def differences(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """ "<dotted field> <stored> → <new>" for every leaf that differs (the digest aside)."""
    old_leaves = dict(_leaves({k: v for k, v in stored.items() if k != "digest"}, ""))
    new_leaves = dict(_leaves({k: v for k, v in new.items() if k != "digest"}, ""))
    absent = "(absent)"
    return [
        f"{field} {_show(old_leaves[field]) if field in old_leaves else absent} → "
        f"{_show(new_leaves[field]) if field in new_leaves else absent}"
        for field in sorted(set(old_leaves) | set(new_leaves))
        if old_leaves.get(field, absent) != new_leaves.get(field, absent)
    ]


@dataclasses.dataclass(frozen=True)
class ResultDir:
    """A directory of the workdir that may hold results: its name in messages ("tokenizer",
    "stages.rl"), path, this job's fingerprint for it and whether it holds results now."""

    label: str
    directory: Path
    fingerprint: dict[str, Any]
    has_results: bool


def _summary(label: str, diffs: list[str]) -> str:
    shown = "; ".join(diffs[:_MAX_SHOWN]) or "digest differs"
    more = f"; and {len(diffs) - _MAX_SHOWN} more" if len(diffs) > _MAX_SHOWN else ""
    return f"{label}: {shown}{more}"


def _warn(message: str) -> None:
    logging.warning("%s", message)
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def reconcile(
    workdir: str | Path, results: Iterable[ResultDir], *, reuse_changed: bool
) -> list[ResultDir]:
    """Checks that every directory holding results was made from this job's inputs; returns
    those whose fingerprint is to be recorded (`record`) once the job is known to run.

    Raises one FingerprintMismatchError listing every directory whose stored fingerprint
    differs (with each differing field), unless `reuse_changed`: then warns, and returns them.
    Results without a fingerprint (made by an older version) are returned too, with a warning.
    """
    mismatched, to_record = [], []
    for result in results:
        if not result.has_results:
            continue
        stored = read_fingerprint(result.directory)
        if stored is None:
            _warn(
                f"{result.label}: {result.directory} has no {FINGERPRINT_FILE} (made by an "
                f"older version); recording this job's inputs as what it was made from"
            )
            to_record.append(result)
        elif stored.get("digest") != result.fingerprint["digest"]:
            mismatched.append(_summary(result.label, differences(stored, result.fingerprint)))
            to_record.append(result)
    if mismatched and not reuse_changed:
        raise FingerprintMismatchError(
            f"{workdir} holds results made from other inputs than this job's; use another "
            f"workdir, or pass {REUSE_HINT} to keep them anyway:\n" + "\n".join(mismatched)
        )
    for summary in mismatched:
        _warn(f"reusing results made from other inputs, as asked (reuse_changed): {summary}")
    return to_record


def record(results: Iterable[ResultDir]) -> None:
    """Writes this job's fingerprint into each result directory (the job's process 0 only)."""
    for result in results:
        write_fingerprint(result.directory, result.fingerprint)
