"""The resumable output of a distillation run: the SFT JSONL plus a sidecar state file.

Next to ``OUT.jsonl`` the run keeps ``OUT.jsonl.state.jsonl``:

* line 1: ``{"config": {...}}``, every setting that decides the output (written once,
  atomically, before any record); a rerun with other settings is refused
  (``reasonrl.sampling.run_store.ConfigMismatchError``) instead of mixing two runs in one file.
* then one line per finished batch, in batch order: its counts (problems, samples, correct,
  truncated, kept records, kept tokens, problems with a kept record, problems whose prompt did
  not fit or was cut) and ``output_bytes``, the size of ``OUT.jsonl`` once the batch's records
  were written and fsync-ed.

A batch's records are written (and fsync-ed) before its state line, so on restart
:func:`open_output` cuts ``OUT.jsonl`` back to the last recorded ``output_bytes``: records of a
batch that has no state line yet are dropped and that batch is generated again, with the same
inputs and PRNG key, so a resumed run ends byte-identical to an uninterrupted one. Problems
with no kept record leave no line in ``OUT.jsonl``; the state file is what remembers them. A
complete line that is not what it should be (edited, or a disk fault) stops the run with
:class:`OutputError` naming ``file:line`` and the fix: deleting that batch line and the ones
after it makes the rerun distill those batches again. The config line and the summary
``OUT.jsonl.summary.json`` are written atomically.
The settings check and the file helpers are :mod:`reasonrl.sampling.run_store`'s, which the eval
binaries use too. ``reasonrl.synthetic.prismatic`` (``label``, ``select``) writes its JSONL
outputs through this module as well, with its own per-batch counts (``append_batch``'s
``count_fields``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from reasonrl.errors import ReasonRLError
from reasonrl.sampling import run_store
from reasonrl.workdir import atomic_write_text

STATE_SUFFIX = ".state.jsonl"
SUMMARY_SUFFIX = ".summary.json"
# Fields every batch line of the state file has (integers).
ENTRY_FIELDS = ("batch", "output_bytes")
# Per-batch counts a state line carries (summed into the summary).
COUNT_FIELDS = (
    "problems",
    "samples",
    "correct",
    "truncated",
    "kept",
    "kept_tokens",
    "problems_with_kept",
    "prompt_too_long_problems",
    "prompt_truncated_problems",
)


class OutputError(ReasonRLError, ValueError):
    """The output file and its state file do not describe a run that can be resumed."""


def state_path(output: Path) -> Path:
    return output.with_name(output.name + STATE_SUFFIX)


def summary_path(output: Path) -> Path:
    return output.with_name(output.name + SUMMARY_SUFFIX)


def _start(output: Path, config: dict) -> list[dict]:
    """A fresh run: an empty output and a state file holding only the config."""
    if output.is_file() and output.stat().st_size:
        raise OutputError(
            f"{output} exists but has no {state_path(output).name} (not written "
            f"by a distillation or prismatic run?); delete it or choose another --output"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_path(output), json.dumps({"config": config}, sort_keys=True) + "\n")
    output.write_bytes(b"")
    return []


def _json_object(line: bytes) -> dict | None:
    """The JSON object on ``line``; None when it is not one."""
    try:
        value = json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def _batch_line_problem(entry: dict | None, batch: int) -> str | None:
    """What is wrong with ``entry``, the state line expected to hold ``batch``; None if nothing."""
    if entry is None or not all(isinstance(entry.get(name), int) for name in ENTRY_FIELDS):
        return f"not a batch line (a JSON object with integer {' and '.join(ENTRY_FIELDS)})"
    if entry["batch"] != batch:
        return f"expected batch {batch}, got {entry['batch']!r}"
    return None


def _read_state(output: Path) -> tuple[dict, list[dict]]:
    """(config, finished batch entries) of ``output``'s state; a torn last line is cut off.

    Raises:
        OutputError: naming ``file:line`` of a complete line that is not a state line, and
            how to go on.
    """
    path = state_path(output)
    numbered = [
        (number, line)
        for number, line in enumerate(run_store.cut_torn_tail(path).split(b"\n"), start=1)
        if line.strip()
    ]
    header_number, header_line = numbered[0] if numbered else (1, b"")
    header = _json_object(header_line) or {}
    if not isinstance(header.get("config"), dict):
        raise OutputError(
            f"{path}:{header_number}: not a distillation state header (or a prismatic one) "
            f'({{"config": ...}}); delete {output} and {path.name} to start over'
        )
    entries = []
    for number, line in numbered[1:]:
        entry = _json_object(line)
        problem = _batch_line_problem(entry, len(entries))
        if problem:
            raise OutputError(
                f"{path}:{number}: {problem}; delete this line and the ones after "
                f"it (a rerun distills those batches again), or delete {output} "
                f"and {path.name} to start over"
            )
        entries.append(entry)
    return header["config"], entries


def open_output(output: Path, config: dict) -> list[dict]:
    """Starts or resumes ``output``; returns the state entries of its finished batches.

    Raises:
        run_store.ConfigMismatchError: the stored config differs from ``config`` (every
            difference named).
        OutputError: the output exists without a state file, is shorter than recorded, or a
            line of the state file is not a state line (``file:line`` named).
    """
    output = Path(output)
    state = state_path(output)
    if not state.is_file() or b"\n" not in state.read_bytes():  # none, or a torn header
        return _start(output, config)
    stored, entries = _read_state(output)
    run_store.check_settings(
        stored,
        config,
        what=f"{output} was made with different settings",
        remedy="choose another --output",
        source=str(state),
    )
    end = entries[-1]["output_bytes"] if entries else 0
    size = output.stat().st_size if output.is_file() else -1
    if size < end:
        raise OutputError(
            f"{output} holds {max(size, 0)} bytes but its state records {end}; "
            f"delete it and {state_path(output).name} to start over"
        )
    if size > end:  # records of a batch whose state line was never written
        run_store.truncate_synced(output, end)
    return entries


def append_batch(
    output: Path,
    batch: int,
    records: Iterable[dict],
    counts: dict,
    *,
    count_fields: Iterable[str] = COUNT_FIELDS,
    details: dict | None = None,
) -> dict:
    """Writes one batch's records, then its state line; returns that state entry.

    ``count_fields`` name the counts the line keeps (other commands that write resumable JSONL,
    e.g. ``reasonrl.synthetic.prismatic``, keep their own); ``details`` (JSON values) are stored
    on the line as they are.
    """
    size = run_store.append_synced(output, run_store.json_lines(records))
    entry = {
        "batch": batch,
        **{name: counts[name] for name in count_fields},
        **(details or {}),
        "output_bytes": size,
    }
    state_line = json.dumps(entry, sort_keys=True) + "\n"
    run_store.append_synced(state_path(output), state_line.encode())
    return entry


def summarize(entries: Iterable[dict]) -> dict:
    """Totals over the state entries: the run's summary (no timings, so resumes agree).

    ``samples`` counts the samples drawn: a problem whose prompt did not fit has none. A count
    an entry lacks (written before the count existed) is 0.
    """
    totals = {name: 0 for name in COUNT_FIELDS}
    for entry in entries:
        for name in COUNT_FIELDS:
            totals[name] += entry.get(name, 0)
    samples, kept = totals["samples"], totals["kept"]
    return {
        "problems": totals["problems"],
        "samples": samples,
        "correct": totals["correct"],
        "correct_fraction": totals["correct"] / samples if samples else 0.0,
        "truncated": totals["truncated"],
        "kept_records": kept,
        "problems_with_kept": totals["problems_with_kept"],
        "mean_kept_tokens": totals["kept_tokens"] / kept if kept else 0.0,
        "prompt_too_long_problems": totals["prompt_too_long_problems"],
        "prompt_truncated_problems": totals["prompt_truncated_problems"],
    }


def write_summary(output: Path, summary: dict) -> Path:
    """Writes ``OUT.jsonl.summary.json`` atomically (a full disk leaves the previous one)."""
    path = summary_path(Path(output))
    return atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
