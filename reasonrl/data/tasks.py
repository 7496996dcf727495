"""Tasks: turn one source record into one tokenised document for packing.

Every task returns `DocumentFeatures`, a dict of int32 [L] arrays for one document of L tokens:

  tokens:    the document's token ids.
  targets:   tokens shifted left by one inside the document; the last entry is the pad id.
  loss_mask: 1 where targets[i] is a token the model is trained to predict, else 0. The last
             position is always 0, so no target ever crosses into the next packed document.

`pretrain` trains on every next token; `sft` only on tokens of assistant responses (their
content and end-of-turn token), as marked by the chat template's assistant mask.

`spectrum` renders one task's description and exchangeable samples with the roles description /
input / output and trains on the outputs (`reasonrl.data.spectrum_format`); it is *random*
(`RANDOM = True`): called as `task(record, rng)` with the numpy Generator grain derives from the
pipeline seed and the element's index, it draws whether to include the description and the
order of the samples, so every epoch sees a new order and a rerun the same ones.

`preference` turns one record into a *pair* of such documents rendered exactly like `sft`
(`PairFeatures`: chosen_tokens / chosen_targets / chosen_loss_mask and the same three
rejected_* arrays); the `pair` packer lays each pair out as one batch row. A task's `LAYOUT`
("document" or "pair") says which packers can take its output (see packing.py).

Every task is built as `task_class(config, tokenizer, where=..., seq_len=...)`; `where` is the
dotted name of its spec section (default "spec.task"), which its errors name (e.g. "set
spec.task.text_field"); `seq_len` is the row length a task may cut its documents to (None: not
known, e.g. when a spec is only checked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from reasonrl.data.spec import spec_error
from reasonrl.data.spectrum_format import as_text, parse_samples, render_spectrum
from reasonrl.data.tokenizer.base import MissingSpecialTokenError, Tokenizer
from reasonrl.data.tokenizer.chat_templates import CHAT_TEMPLATES, get_chat_template

DocumentFeatures = dict[str, np.ndarray]
PairFeatures = dict[str, np.ndarray]  # f"{side}_{feature}" for side in PAIR_SIDES

PAIR_SIDES = ("chosen", "rejected")


def next_token_features(
    token_ids: np.ndarray, predict_mask: np.ndarray, pad_id: int
) -> DocumentFeatures:
    """Per-document next-token features.

    Args:
      token_ids: int [L] ids of one document.
      predict_mask: bool [L], True for tokens that should be predicted (as targets).
      pad_id: id written as the target of the document's last token.

    Returns:
      tokens, targets, loss_mask: int32 [L]; loss_mask[i] = predict_mask[i + 1], last = 0.
    """
    tokens = np.asarray(token_ids, dtype=np.int32)
    targets = np.full_like(tokens, pad_id)
    targets[:-1] = tokens[1:]
    loss_mask = np.zeros_like(tokens)
    loss_mask[:-1] = np.asarray(predict_mask[1:], dtype=np.int32)
    return {"tokens": tokens, "targets": targets, "loss_mask": loss_mask}


def record_field(record: Mapping[str, Any], name: str, option: str) -> Any:
    """`record[name]`; a KeyError naming the fields the record has and the dotted `option` that
    chose `name` when it has no such field."""
    if name not in record:
        raise KeyError(f"record has no field {name!r} (it has {sorted(record)}); set {option}")
    return record[name]


class PretrainTask:
    """Plain text documents; every next token is trained on."""

    LAYOUT = "document"

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "pretrain", ...}`.

        Attributes:
          text_field: record field holding the document text.
          add_bos: prepend bos; None: if the tokenizer has one.
          add_eos: append eos (marks the document end); None: if the tokenizer has one.
        """

        text_field: str = "text"
        add_bos: bool | None = None
        add_eos: bool | None = None

    def __init__(
        self, config: Config, tokenizer: Tokenizer, *, where: str = "spec.task", seq_len=None
    ):
        del seq_len  # documents are split by the packer
        self._text_field = config.text_field
        self._tokenizer = tokenizer
        self._where = where
        self._add_bos = tokenizer.bos_id is not None if config.add_bos is None else config.add_bos
        self._add_eos = tokenizer.eos_id is not None if config.add_eos is None else config.add_eos
        for option, wanted, token_id in [
            ("add_bos", self._add_bos, tokenizer.bos_id),
            ("add_eos", self._add_eos, tokenizer.eos_id),
        ]:
            if wanted and token_id is None:
                raise MissingSpecialTokenError(
                    f"{where}.{option}: tokenizer {tokenizer.name!r} has no "
                    f"{option.removeprefix('add_')} token"
                )

    def __call__(self, record: Mapping[str, Any]) -> DocumentFeatures:
        text = record_field(record, self._text_field, f"{self._where}.text_field")
        ids = self._tokenizer.encode(str(text), add_bos=self._add_bos, add_eos=self._add_eos)
        ids = np.asarray(ids, dtype=np.int32)
        return next_token_features(ids, np.ones(len(ids), dtype=bool), self._tokenizer.pad_id)


def _check_template(name: str) -> None:
    if name not in CHAT_TEMPLATES:
        raise spec_error("chat_template", f"got {name!r}; expected one of {sorted(CHAT_TEMPLATES)}")


class _ChatTask:
    """A task whose records are rendered with a chat template (its config has `chat_template`);
    the tokenizer must have the template's special tokens."""

    def __init__(
        self, config: Any, tokenizer: Tokenizer, *, where: str = "spec.task", seq_len=None
    ):
        self._seq_len = seq_len
        self._config = config
        self._tokenizer = tokenizer
        self._where = where
        self._template = get_chat_template(config.chat_template)
        try:
            self._template.check_tokenizer(tokenizer)
        except MissingSpecialTokenError as error:
            raise MissingSpecialTokenError(f"{where}.chat_template: {error}") from None

    def _field(self, record: Mapping[str, Any], option: str) -> Any:
        """The record's value of the field that config option `option` names."""
        return record_field(record, getattr(self._config, option), f"{self._where}.{option}")


class SftTask(_ChatTask):
    """Conversations rendered by a chat template; only assistant responses are trained on.

    A record is either a prompt/response pair (`prompt_field`, `response_field`, optional
    `system_prompt`), e.g. GSM8K's {"question", "answer"}, or a list of {"role", "content"}
    messages under `messages_field`.
    """

    LAYOUT = "document"

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "sft", ...}`; give prompt_field + response_field or
        messages_field.

        Attributes:
          chat_template: name in CHAT_TEMPLATES ("chatml", "llama3", "plain").
          prompt_field: field with the user turn.
          response_field: field with the assistant turn.
          system_prompt: optional system message put before the prompt.
          messages_field: field with a list of {"role", "content"} messages.
        """

        chat_template: str = "chatml"
        prompt_field: str | None = None
        response_field: str | None = None
        system_prompt: str | None = None
        messages_field: str | None = None

        def __post_init__(self):
            _check_template(self.chat_template)
            has_pair = self.prompt_field is not None and self.response_field is not None
            has_one_of_pair = (self.prompt_field is None) != (self.response_field is None)
            if has_one_of_pair or has_pair == (self.messages_field is not None):
                raise spec_error(
                    "messages_field",
                    "give either both prompt_field and response_field, or messages_field",
                )
            if self.system_prompt is not None and self.messages_field is not None:
                raise spec_error("system_prompt", "only applies with prompt_field/response_field")

    def messages(self, record: Mapping[str, Any]) -> list[dict[str, str]]:
        """The conversation held by `record`."""
        config = self._config
        if config.messages_field is not None:
            messages = self._field(record, "messages_field")
            if not isinstance(messages, list):
                raise ValueError(f"field {config.messages_field!r} must be a list of messages")
            return messages
        system = (
            []
            if config.system_prompt is None
            else [{"role": "system", "content": config.system_prompt}]
        )
        return system + [
            {"role": "user", "content": str(self._field(record, "prompt_field"))},
            {"role": "assistant", "content": str(self._field(record, "response_field"))},
        ]

    def __call__(self, record: Mapping[str, Any]) -> DocumentFeatures:
        rendered = self._template.render(self._tokenizer, self.messages(record))
        return next_token_features(
            rendered.token_ids, rendered.assistant_mask, self._tokenizer.pad_id
        )


class PreferenceTask(_ChatTask):
    """Preference pairs {prompt, chosen, rejected}: the prompt as the user turn, each response as
    the assistant turn, both rendered like `sft` (loss mask on the response tokens only).

    Returns `PairFeatures`: for side in ("chosen", "rejected"), `{side}_tokens`,
    `{side}_targets`, `{side}_loss_mask` int32 [L_side]. Pack with `{"type": "pair"}`.
    """

    LAYOUT = "pair"

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "preference", ...}`.

        Attributes:
          chat_template: name in CHAT_TEMPLATES ("chatml", "llama3", "plain").
          prompt_field: field with the user turn.
          chosen_field: field with the preferred assistant response.
          rejected_field: field with the dispreferred assistant response.
          system_prompt: optional system message put before the prompt.
        """

        chat_template: str = "chatml"
        prompt_field: str = "prompt"
        chosen_field: str = "chosen"
        rejected_field: str = "rejected"
        system_prompt: str | None = None

        def __post_init__(self):
            _check_template(self.chat_template)

    def _text(self, record: Mapping[str, Any], option: str) -> str:
        value = self._field(record, option)
        if not isinstance(value, str):
            raise ValueError(
                f"field {getattr(self._config, option)!r} must be a string, got "
                f"{type(value).__name__}"
            )
        return value

    def __call__(self, record: Mapping[str, Any]) -> PairFeatures:
        config = self._config
        prompt = (
            []
            if config.system_prompt is None
            else [{"role": "system", "content": config.system_prompt}]
        )
        prompt.append({"role": "user", "content": self._text(record, "prompt_field")})
        features: PairFeatures = {}
        for side in PAIR_SIDES:
            response = self._text(record, f"{side}_field")
            rendered = self._template.render(
                self._tokenizer, [*prompt, {"role": "assistant", "content": response}]
            )
            document = next_token_features(
                rendered.token_ids, rendered.assistant_mask, self._tokenizer.pad_id
            )
            features.update({f"{side}_{key}": value for key, value in document.items()})
        return features


class SpectrumTask(_ChatTask):
    """Spectrum tuning: one record = one task's description and samples, rendered as one
    sequence (`reasonrl.data.spectrum_format`); cut at a sample boundary to the row length."""

    LAYOUT = "document"
    RANDOM = True

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "spectrum", ...}`.

        Attributes:
          chat_template: name in CHAT_TEMPLATES ("chatml", "llama3", "plain").
          description_field: field with the task description (absent or null: none).
          samples_field: field with the list of samples.
          input_field, output_field: a sample's input (optional) and output fields.
          description_probability: chance that a sequence starts with the description (the
            paper's default 0.6), unless the record's `description_probability_field` sets it.
          description_probability_field: the record field overriding it per task.
        """

        chat_template: str = "chatml"
        description_field: str = "description"
        samples_field: str = "samples"
        input_field: str = "input"
        output_field: str = "output"
        description_probability: float = 0.6
        description_probability_field: str = "description_probability"

        def __post_init__(self):
            _check_template(self.chat_template)
            if not 0.0 <= self.description_probability <= 1.0:
                raise spec_error(
                    "description_probability",
                    f"must be in [0, 1], got {self.description_probability}",
                )

    def _description_probability(self, record: Mapping[str, Any]) -> float:
        field = self._config.description_probability_field
        value = record.get(field, self._config.description_probability)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"field {field!r} must be a number in [0, 1], got {value!r}")
        return float(value)

    def __call__(self, record: Mapping[str, Any], rng: np.random.Generator) -> DocumentFeatures:
        config = self._config
        samples = parse_samples(
            self._field(record, "samples_field"),
            input_field=config.input_field,
            output_field=config.output_field,
        )
        description = record.get(config.description_field)
        if description is not None:
            description = as_text(description, f"field {config.description_field!r}")
        probability = self._description_probability(record)
        use_description = description is not None and bool(rng.random() < probability)
        order = rng.permutation(len(samples))
        rendered = render_spectrum(
            self._template,
            self._tokenizer,
            description if use_description else None,
            [samples[i] for i in order],
            max_tokens=self._seq_len,
        )
        return next_token_features(rendered.token_ids, rendered.loss_mask, self._tokenizer.pad_id)


# `type` value of a task spec -> task class (with a nested `Config` and a `LAYOUT`; `RANDOM`
# when it is called as task(record, rng)).
TASK_TYPES: dict[str, Any] = {
    "pretrain": PretrainTask,
    "sft": SftTask,
    "preference": PreferenceTask,
    "spectrum": SpectrumTask,
}
