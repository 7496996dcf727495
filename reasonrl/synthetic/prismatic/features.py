"""Gradient features (Prismatic Synthesis, Jung et al. 2025): the gradient of each example's
response NLL w.r.t. a fixed proxy model's parameters, projected to d dims and unit-normalised.

    batch = render_examples(records, tokenizer, render)     # int32 [B, L] arrays + valid [B]
    fn = feature_function(config, mesh, seed=0, dim=1024)
    features = fn(params, batch.tokens, batch.targets, batch.loss_mask)   # float32 [B, d]

* An example is rendered exactly like the ``sft`` task (``reasonrl.data.SftTask``: chat template,
  loss on the assistant response and its end-of-turn token), cut to ``max_length`` tokens and
  right-padded to it (padding: no loss, and causal attention keeps it from the real positions).
  Every batch has the same shape, so one compilation serves a run and an example's features do
  not depend on its batch.
* The loss of one example is its mean response-token NLL; its gradient (``jax.grad``, batched
  with ``jax.vmap`` over the examples of a chunk) goes through
  :func:`~reasonrl.synthetic.prismatic.projection.project` and is scaled to unit length
  (without it high-loss examples dominate the covariance). Mean or sum does not matter after
  the normalisation; the mean keeps the numbers in range.
* An example with no response token inside ``max_length`` has no gradient: its row is zero and
  it is reported as invalid (never silently dropped).
* The proxy is fixed: gradients are taken at the given params, never at a model being trained.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from reasonrl import models
from reasonrl.data import MissingSpecialTokenError, SftTask, Tokenizer
from reasonrl.errors import ReasonRLError
from reasonrl.objectives.logprobs import token_statistics
from reasonrl.parallel import batch_sharding, batch_split_count, jit_on_mesh
from reasonrl.synthetic.prismatic.projection import check_dim, project, unit_rows


@dataclasses.dataclass(frozen=True)
class RenderSettings:
    """How a record becomes the proxy's training example (the ``sft`` task's settings).

    Attributes:
        chat_template: ``reasonrl.data.CHAT_TEMPLATES`` name.
        prompt_field, response_field: record fields of the user and assistant turns.
        system_prompt: optional system message.
        max_length: tokens kept per example (longer ones are cut at the end).
    """

    chat_template: str = "chatml"
    prompt_field: str = "question"
    response_field: str = "answer"
    system_prompt: str | None = None
    max_length: int = 512


@dataclasses.dataclass(frozen=True)
class ExampleBatch:
    """Rendered examples, right-padded to one length.

    Attributes:
        tokens, targets, loss_mask: int32 [B, L] (see ``reasonrl.data.tasks``).
        truncated: bool [B], the example was longer than L.
    """

    tokens: np.ndarray
    targets: np.ndarray
    loss_mask: np.ndarray
    truncated: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """bool [B]: the example has at least one response token (so a gradient)."""
        return self.loss_mask.any(axis=1)

    def padded_to(self, rows: int) -> ExampleBatch:
        """The batch with empty (invalid) rows appended up to ``rows``."""
        extra = rows - self.tokens.shape[0]
        pad = lambda a: np.pad(a, ((0, extra), (0, 0)))  # noqa: E731
        return ExampleBatch(
            pad(self.tokens),
            pad(self.targets),
            pad(self.loss_mask),
            np.pad(self.truncated, (0, extra)),
        )


class RenderError(ReasonRLError, ValueError):
    """A chat template the tokenizer cannot render (it lacks the template's special tokens)."""


def sft_renderer(tokenizer: Tokenizer, settings: RenderSettings) -> SftTask:
    """The ``sft`` task that renders records for ``settings`` (errors name the field)."""
    config = SftTask.Config(
        chat_template=settings.chat_template,
        prompt_field=settings.prompt_field,
        response_field=settings.response_field,
        system_prompt=settings.system_prompt,
    )
    try:
        return SftTask(config, tokenizer, where="features")
    except MissingSpecialTokenError as error:
        raise RenderError(
            f"--chat_template={settings.chat_template} does not fit the tokenizer: {error}"
        ) from None


def render_examples(
    records: Sequence[dict], renderer: SftTask, max_length: int, pad_id: int
) -> ExampleBatch:
    """Renders ``records`` with the sft task, cut and right-padded to ``max_length`` tokens."""
    size = (len(records), max_length)
    tokens, targets = np.full(size, pad_id, np.int32), np.full(size, pad_id, np.int32)
    loss_mask, truncated = np.zeros(size, np.int32), np.zeros(len(records), bool)
    for row, record in enumerate(records):  # host-side tokenisation, once per example
        document = renderer(record)
        length = min(len(document["tokens"]), max_length)
        truncated[row] = len(document["tokens"]) > max_length
        tokens[row, :length] = document["tokens"][:length]
        targets[row, :length] = document["targets"][:length]
        loss_mask[row, :length] = document["loss_mask"][:length]
    return ExampleBatch(tokens, targets, loss_mask, truncated)


def example_loss(config: models.ModelConfig, params, tokens, targets, loss_mask) -> jax.Array:
    """Mean NLL of one example's response tokens: tokens/targets/loss_mask int32 [L] -> []."""
    # Causal attention: right padding never reaches a real position, so one segment is exact.
    positions = jnp.arange(tokens.shape[0], dtype=jnp.int32)[None]
    hidden, _ = models.hidden_states(
        config, params, tokens[None], positions, jnp.ones_like(positions)
    )
    # Chunked over positions with rematerialisation: never the whole [L, V] logits at once.
    target_logprobs = token_statistics(config, params, hidden, targets[None]).logprobs[0]
    mask = loss_mask.astype(jnp.float32)
    return -(target_logprobs * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def per_example_gradients(config: models.ModelConfig, params, tokens, targets, loss_mask):
    """Gradient pytree of every example's loss, each leaf [B, *param shape] (traceable)."""
    grad_fn = jax.grad(lambda p, t, y, m: example_loss(config, p, t, y, m))
    return jax.vmap(grad_fn, in_axes=(None, 0, 0, 0))(params, tokens, targets, loss_mask)


@functools.lru_cache(maxsize=16)
def feature_function(config: models.ModelConfig, mesh: Mesh | None, *, seed: int, dim: int):
    """A jitted ``(params, tokens, targets, loss_mask) -> float32 [B, dim]`` unit features.

    With a mesh the params keep their rule shardings and the rows are split over the batch axes
    (B must divide by ``batch_split_count(mesh)``: see :func:`batch_rows`); rows without a
    response token come back zero.
    """
    check_dim(dim)

    def features(params, tokens, targets, loss_mask):
        grads = per_example_gradients(config, params, tokens, targets, loss_mask)
        return unit_rows(project(grads, seed, dim), loss_mask.any(axis=1))

    if mesh is None:
        return jax.jit(features)
    rows = batch_sharding(mesh)
    shardings = (models.param_shardings(config, mesh), rows, rows, rows)
    return jit_on_mesh(features, mesh, in_shardings=shardings, out_shardings=rows)


def batch_rows(batch_size: int, mesh: Mesh | None) -> int:
    """Rows of every feature call: ``batch_size`` rounded up to split evenly over the mesh."""
    splits = 1 if mesh is None else batch_split_count(mesh)
    return -(-batch_size // splits) * splits


def gradient_features(
    config: models.ModelConfig, params, batch: ExampleBatch, *, seed: int, dim: int, rows: int
) -> np.ndarray:
    """float32 [B, dim] unit gradient features of ``batch`` (zero rows where not ``valid``),
    computed as one call of ``rows`` >= B rows (pad rows are dropped)."""
    mesh = models.mesh_of(params)
    fn = feature_function(config, mesh, seed=seed, dim=dim)
    padded = batch.padded_to(rows)
    out = fn(params, padded.tokens, padded.targets, padded.loss_mask)
    return np.asarray(out)[: batch.tokens.shape[0]]
