"""The ``features`` and ``score`` subcommands: gradient features of a JSONL file, resumable, and
the G-Vendi of a feature directory.

``features`` cuts the records into batches of ``--batch_size`` (a runtime setting: an example's
features do not depend on its batch, so a resumed run may use another one), computes each
batch's unit features on the proxy (``features.gradient_features``) and stores them
(``feature_store``). The stored settings (proxy weights and data by sha256, rendering, seed,
dim, projection block size) are compared on every rerun.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from absl import logging

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.models import mesh_of
from reasonrl.sampling.problem_runs import (
    RuntimeSettings,
    SettingsError,
    check_at_least_one,
    checkpoint_digest,
    load_model,
)
from reasonrl.synthetic.prismatic import feature_store
from reasonrl.synthetic.prismatic.features import (
    RenderSettings,
    batch_rows,
    gradient_features,
    render_examples,
    sft_renderer,
)
from reasonrl.synthetic.prismatic.gvendi import g_vendi
from reasonrl.synthetic.prismatic.projection import BLOCK_SIZE, check_dim
from reasonrl.synthetic.prismatic.records import file_digest, load_records
from reasonrl.workdir import DirectoryLock


@dataclasses.dataclass(frozen=True)
class FeatureJob:
    """Everything that decides a feature directory (stored, compared on resume).

    Attributes:
        proxy, tokenizer: checkpoint directory and tokenizer path of the fixed proxy model.
        data: JSONL of {prompt_field, response_field} records; id_field: their ids (None:
            line numbers).
        render: how a record becomes an example (the sft task's rendering).
        seed, dim: projection seed and dimension (a multiple of 32).
        limit: only the first ``limit`` records (None: all).
        dtype: parameter dtype of the proxy.
    """

    proxy: str
    tokenizer: str
    data: str
    render: RenderSettings = RenderSettings()
    id_field: str | None = None
    seed: int = 0
    dim: int = 1024
    limit: int | None = None
    dtype: str = "float32"

    def __post_init__(self):
        check_at_least_one(limit=self.limit, max_length=self.render.max_length)
        try:
            check_dim(self.dim)
        except ValueError as error:
            raise SettingsError(str(error)) from None

    def check_context(self) -> None:
        """Raises SettingsError unless --max_length fits the proxy's context (config.json only)."""
        context = models.read_hf_config(self.proxy).max_position_embeddings
        if self.render.max_length > context:
            raise SettingsError(
                f"--max_length={self.render.max_length} exceeds the proxy's context of {context} "
                f"tokens (max_position_embeddings of {self.proxy})"
            )

    def load(self) -> tuple[list[str], list[dict]]:
        """(ids, records) of the first ``limit`` data records (fields checked)."""
        fields = [
            (self.render.prompt_field, "--prompt_field"),
            (self.render.response_field, "--response_field"),
        ]
        ids, records = load_records(self.data, flag="--data", fields=fields, id_field=self.id_field)
        return ids[: self.limit], records[: self.limit]

    def stored_config(self) -> dict:
        """Flag name -> value of every setting that decides the features."""
        fields = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "render"
        }
        return {
            **fields,
            **dataclasses.asdict(self.render),
            "projection_block_size": BLOCK_SIZE,
            "data_sha256": file_digest(self.data),
            "checkpoint_sha256": checkpoint_digest(self.proxy),
        }


def run_features(
    job: FeatureJob, output: str | Path, runtime: RuntimeSettings, *, batch_size: int = 16
) -> dict:
    """Writes (or resumes) the feature directory ``output``; returns its summary.

    Raises:
        RecordFileError, SettingsError: bad data or settings (before anything is written).
        reasonrl.workdir.DirectoryLockedError: another run is writing ``output``.
        run_store.ConfigMismatchError: ``output`` holds features made with other settings.
    """
    check_at_least_one(batch_size=batch_size)
    output = Path(output)
    ids, records = job.load()
    job.check_context()
    tokenizer = data_lib.load_tokenizer(job.tokenizer)
    renderer = sft_renderer(tokenizer, job.render)  # a bad chat template fails here
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock(output.parent, purpose="the feature run", lock_name=f".{output.name}.lock")
    with lock:
        entries = feature_store.open_store(output, job.stored_config())
        done = sum(len(entry["ids"]) for entry in entries)
        logging.info("%d examples, %d already done", len(ids), done)
        if done < len(ids):
            config, params, _ = load_model(
                job.proxy, job.tokenizer, runtime=runtime, dtype=job.dtype
            )
            rows = batch_rows(batch_size, mesh_of(params))
            for start in range(done, len(ids), batch_size):  # host loop over batches (I/O)
                began = time.perf_counter()
                batch = render_examples(
                    records[start : start + batch_size],
                    renderer,
                    job.render.max_length,
                    tokenizer.pad_id,
                )
                features = gradient_features(
                    config, params, batch, seed=job.seed, dim=job.dim, rows=rows
                )
                entries.append(
                    feature_store.append_batch(
                        output,
                        len(entries),
                        ids[start : start + batch_size],
                        features,
                        batch.valid,
                        batch.truncated,
                    )
                )
                logging.info(
                    "examples %d-%d: %.2f s",
                    start,
                    start + len(batch.valid) - 1,
                    time.perf_counter() - began,
                )
        summary = score_features(output)
        feature_store.write_summary(output, summary)
    return summary


def score_features(directory: str | Path) -> dict:
    """The ``score`` summary of a feature directory: counts and G-Vendi of the valid rows."""
    features = feature_store.load_features(directory)
    valid = int(features.valid.sum())
    invalid_ids = [i for i, ok in zip(features.ids, features.valid) if not ok]
    return {
        "features": str(directory),
        "examples": len(features.ids),
        "valid_examples": valid,
        "invalid_ids": invalid_ids,
        "truncated_examples": int(features.truncated.sum()),
        "dim": int(features.features.shape[1]),
        "g_vendi": g_vendi(features.features, features.valid) if valid else None,
    }
