"""Spectrum-tuning sequences (Sorensen et al. 2025): a description and exchangeable samples of
one task's output distribution, rendered with new chat roles, and their loss mask.

A record holds one task (or one individual):

    {"description": "Name a fruit: apple 50%, pear 30%, plum 20%.",     # optional
     "samples": [{"output": "apple"}, {"input": "3", "output": "5"}, ...]}

A sequence is [description] + the samples in a seeded random order, each sample an `input`
turn (when it has an input) and an `output` turn, in the model's chat template
(`reasonrl.data.tokenizer.chat_templates`), e.g. ChatML:

    [<|im_start|>]description\\n{d}[<|im_end|>]\\n
    [<|im_start|>]input\\n{x}[<|im_end|>]\\n
    [<|im_start|>]output\\n{y}[<|im_end|>]\\n

Llama 3 uses [<|start_header_id|>]role[<|end_header_id|>]\\n\\n{content}[<|eot_id|>]; the plain
template writes descriptions and inputs as lines and each output followed by [eos].

Loss mask (the official `messages_to_spectrum_loss_texts`): only each output's content and its
end-of-turn token; never role headers, descriptions, inputs or separators. When the sequence has
no description, the FIRST output carries no loss either (nothing to predict it from). A value
that is not a string (an output with several fields, a number) is written as JSON.

`max_tokens` cuts a sequence at the end of the last sample that fits; a first sample that does
not fit on its own is cut at `max_tokens` tokens.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from reasonrl.data.tokenizer.base import Tokenizer
from reasonrl.data.tokenizer.chat_templates import ChatTemplate


@dataclasses.dataclass(frozen=True)
class Roles:
    """The chat roles a sequence's description, inputs and outputs are written with."""

    description: str
    input: str
    output: str


# The paper's new roles, and the ordinary chat roles an instruction-tuned model knows (the
# spectrum evals' "chat" format; the baseline's instruction data uses them too).
SPECTRUM_ROLES = Roles(description="description", input="input", output="output")
CHAT_ROLES = Roles(description="user", input="user", output="assistant")
FORMATS = {"spectrum": SPECTRUM_ROLES, "chat": CHAT_ROLES}


@dataclasses.dataclass(frozen=True)
class SpectrumSample:
    """One draw from the task: its output and, for conditional tasks, its input."""

    output: str
    input: str | None = None


def as_text(value: Any, what: str) -> str:
    """`value` as turn content: a string as it is, anything else JSON-like as JSON.

    Raises:
      ValueError: for None or a value JSON cannot write.
    """
    if isinstance(value, str):
        return value
    if value is None:
        raise ValueError(f"{what} is null")
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} cannot be written as JSON: {error}") from None


def parse_samples(
    values: Any, *, input_field: str = "input", output_field: str = "output"
) -> list[SpectrumSample]:
    """The samples of a record's sample list (each a mapping with an output, maybe an input).

    Raises:
      ValueError / TypeError: naming the first bad sample.
    """
    if not isinstance(values, list) or not values:
        raise ValueError(f"samples must be a non-empty list, got {type(values).__name__}")
    samples = []
    for index, value in enumerate(values):
        if not isinstance(value, Mapping):
            raise TypeError(f"sample {index} must be an object, got {type(value).__name__}")
        if output_field not in value:
            raise ValueError(f"sample {index} has no {output_field!r} field (has {sorted(value)})")
        output = as_text(value[output_field], f"sample {index} {output_field!r}")
        given = value.get(input_field)
        sample_input = None if given is None else as_text(given, f"sample {index} {input_field!r}")
        samples.append(SpectrumSample(output=output, input=sample_input))
    return samples


def spectrum_messages(
    description: str | None, samples: Sequence[SpectrumSample], roles: Roles = SPECTRUM_ROLES
) -> tuple[list[dict[str, str]], list[int]]:
    """(messages in order, index of each sample's output message)."""
    messages = [] if description is None else [{"role": roles.description, "content": description}]
    output_messages = []
    for sample in samples:
        if sample.input is not None:
            messages.append({"role": roles.input, "content": sample.input})
        output_messages.append(len(messages))
        messages.append({"role": roles.output, "content": sample.output})
    return messages, output_messages


def prompt_ids(
    template: ChatTemplate,
    tokenizer: Tokenizer,
    description: str | None,
    sample_input: str | None = None,
    roles: Roles = SPECTRUM_ROLES,
) -> list[int]:
    """Token ids of a prompt for one output: the description, the input, and the header of an
    output turn (what a model continues with an output and its end-of-turn token)."""
    messages = [] if description is None else [{"role": roles.description, "content": description}]
    if sample_input is not None:
        messages.append({"role": roles.input, "content": sample_input})
    rendered = template.render(
        tokenizer, messages, add_generation_prompt=True, response_role=roles.output
    )
    return rendered.token_ids.tolist()


@dataclasses.dataclass(frozen=True)
class RenderedSpectrum:
    """One spectrum sequence.

    Attributes:
      token_ids: int32 [L].
      loss_mask: bool [L], True on the tokens trained on (outputs' content + end-of-turn).
      output_index: int32 [L], j on the content and end-of-turn tokens of the j-th output kept
        (whether trained on or not), -1 elsewhere.
      num_samples: samples kept (after `max_tokens`).
    """

    token_ids: np.ndarray
    loss_mask: np.ndarray
    output_index: np.ndarray
    num_samples: int


def render_spectrum(
    template: ChatTemplate,
    tokenizer: Tokenizer,
    description: str | None,
    samples: Sequence[SpectrumSample],
    *,
    max_tokens: int | None = None,
    train_first_output: bool | None = None,
    roles: Roles = SPECTRUM_ROLES,
) -> RenderedSpectrum:
    """Renders one sequence (samples in the given order) and its loss mask.

    Args:
      description: the task description, or None for a sequence without one.
      max_tokens: cut at the last sample boundary within this many tokens (see module doc).
      train_first_output: whether the first output is in the loss mask; default: only when
        there is a description (the paper's rule). Evals pass True to score every output.
      roles: the paper's roles (default) or `CHAT_ROLES`.
    """
    if not samples:
        raise ValueError("a spectrum sequence needs at least one sample")
    messages, output_messages = spectrum_messages(description, samples, roles)
    first_trained = description is not None if train_first_output is None else train_first_output
    rendered = template.render(tokenizer, messages, response_role=roles.output)
    ends = rendered.message_ends[output_messages]  # [num_samples]
    starts = np.concatenate([[0], rendered.message_ends[:-1]])[output_messages]
    positions = np.arange(len(rendered.token_ids))
    output_index = np.full(len(rendered.token_ids), -1, dtype=np.int32)
    for j, (start, end) in enumerate(zip(starts, ends)):
        output_index[(positions >= start) & (positions < end) & rendered.assistant_mask] = j
    loss_mask = output_index >= (0 if first_trained else 1)
    length = len(rendered.token_ids)
    if max_tokens is not None and length > max_tokens:
        fitting = int(np.sum(ends <= max_tokens))
        length = int(ends[fitting - 1]) if fitting else max_tokens
    return RenderedSpectrum(
        token_ids=rendered.token_ids[:length],
        loss_mask=loss_mask[:length],
        output_index=output_index[:length],
        num_samples=max(int(np.sum(ends <= length)), 1),
    )
