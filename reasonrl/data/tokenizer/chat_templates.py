"""Chat templates written in Python: render messages to token ids plus an assistant mask.

A template renders a conversation as a sequence of segments, each either text (encoded with
`Tokenizer.encode`) or one special token (looked up with `Tokenizer.special_token_id`), and each
flagged as assistant response or not. The mask therefore comes from how the ids were built,
never from searching the rendered string.

Formats (`role`/`content` are a message's fields; [X] is special token X, one id):

  chatml  (Qwen2/2.5/3):  [<|im_start|>]role\\ncontent[<|im_end|>]\\n
                          generation prompt: [<|im_start|>]assistant\\n
  llama3  (Llama 3.x):    [<|begin_of_text|>] once, then per message
                          [<|start_header_id|>]role[<|end_header_id|>]\\n\\n
                          content.strip()[<|eot_id|>]
                          generation prompt: [<|start_header_id|>]assistant[<|end_header_id|>]\\n\\n
  plain   (base models):  [bos] if the tokenizer has one, then each non-assistant content + "\\n"
                          and each assistant content + [eos]; no generation prompt text.

The assistant mask is True exactly on the tokens of assistant contents and on the end-of-turn
token that closes them ([<|im_end|>], [<|eot_id|>], [eos]).

`render(..., response_role=..., trained=...)` generalises "assistant": spectrum tuning
(`reasonrl.data.spectrum_format`) renders the roles description / input / output with
`response_role="output"`, and `trained` leaves a given response out of the mask (the first
output of a sequence without a description). The response role decides the plain template's
format (content + [eos]) and the generation prompt's role; the mask is True on a message's
content and end-of-turn token when it has the response role and `trained` (default: all) says so.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from reasonrl.data.tokenizer.base import MissingSpecialTokenError, Tokenizer

ASSISTANT_ROLE = "assistant"

Message = Mapping[str, str]
# (token ids, belongs to a trained response, index of its turn or None for headers outside turns)
Segment = tuple[list[int], bool, int | None]


@dataclasses.dataclass(frozen=True)
class Turn:
    """One message as a template renders it: `is_response` picks the response format (plain:
    content + eos); `trained` puts its content and end-of-turn token in the mask."""

    role: str
    content: str
    is_response: bool
    trained: bool


@dataclasses.dataclass(frozen=True)
class RenderedChat:
    """A rendered conversation.

    Attributes:
      token_ids: int32 [L] ids of the whole conversation.
      assistant_mask: bool [L], True on assistant response tokens incl. their end-of-turn token
        (with `render(response_role=..., trained=...)`: on the trained responses').
      message_ends: int64 [M], for each of the M messages the index just past its last token
        (its header, content, end-of-turn token and separator).
    """

    token_ids: np.ndarray
    assistant_mask: np.ndarray
    message_ends: np.ndarray


def _turns(
    messages: Sequence[Message], response_role: str, trained: Sequence[bool] | None
) -> list[Turn]:
    """The messages as turns; raises ValueError naming the first bad message."""
    if trained is not None and len(trained) != len(messages):
        raise ValueError(f"trained has {len(trained)} flags for {len(messages)} messages")
    turns = []
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise ValueError(
                f"message {index} must have string 'role' and 'content' fields, got {message!r}"
            )
        is_response = role == response_role
        wanted = True if trained is None else bool(trained[index])
        turns.append(Turn(role, content, is_response, is_response and wanted))
    return turns


class ChatTemplate(abc.ABC):
    """Renders conversations for one model family."""

    name: str
    special_tokens: tuple[str, ...] = ()

    def check_tokenizer(self, tokenizer: Tokenizer) -> None:
        """Raises MissingSpecialTokenError if `tokenizer` lacks a token this template needs."""
        for token in self.special_tokens:
            self._special(tokenizer, token)

    def render(
        self,
        tokenizer: Tokenizer,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = False,
        response_role: str = ASSISTANT_ROLE,
        trained: Sequence[bool] | None = None,
    ) -> RenderedChat:
        """Token ids and mask of `messages` (dicts with "role" and "content").

        Args:
          add_generation_prompt: end with the header that opens a `response_role` turn.
          response_role: the role whose turns are responses (see the module docstring).
          trained: one flag per message; a response whose flag is False is not in the mask.
        """
        turns = _turns(messages, response_role, trained)
        generation_role = response_role if add_generation_prompt else None
        segments = list(self._segments(tokenizer, turns, generation_role))
        lengths = np.array([len(ids) for ids, _, _ in segments], dtype=np.int64)
        flags = np.array([trained for _, trained, _ in segments], dtype=bool)
        pieces = [np.asarray(ids, dtype=np.int32) for ids, _, _ in segments]
        token_ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        ends = np.cumsum(lengths)
        message_ends = np.zeros(len(turns), dtype=np.int64)
        for end, (_, _, turn_index) in zip(ends, segments):
            if turn_index is not None:
                message_ends[turn_index] = end
        return RenderedChat(
            token_ids=token_ids,
            assistant_mask=np.repeat(flags, lengths),
            message_ends=message_ends,
        )

    def _special(self, tokenizer: Tokenizer, token: str) -> list[int]:
        return [tokenizer.special_token_id(token, required_by=f"chat template {self.name!r}")]

    @abc.abstractmethod
    def _segments(
        self, tokenizer: Tokenizer, turns: list[Turn], generation_role: str | None
    ) -> Iterator[Segment]:
        """Yields the segments of the conversation in order, then the header opening a
        `generation_role` turn (when not None)."""


class ChatMLTemplate(ChatTemplate):
    """Qwen's ChatML format (no default system prompt is inserted)."""

    name = "chatml"
    special_tokens = ("<|im_start|>", "<|im_end|>")

    def _segments(self, tokenizer, turns, generation_role):
        start, end = (self._special(tokenizer, token) for token in self.special_tokens)
        newline = tokenizer.encode("\n")
        for index, turn in enumerate(turns):
            yield start + tokenizer.encode(f"{turn.role}\n"), False, index
            yield tokenizer.encode(turn.content), turn.trained, index
            yield end, turn.trained, index
            yield newline, False, index
        if generation_role is not None:
            yield start + tokenizer.encode(f"{generation_role}\n"), False, None


class Llama3Template(ChatTemplate):
    """Llama 3 format; contents are stripped as in Meta's template."""

    name = "llama3"
    special_tokens = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")

    def _segments(self, tokenizer, turns, generation_role):
        begin, header_start, header_end, end_of_turn = (
            self._special(tokenizer, token) for token in self.special_tokens
        )
        header_gap = tokenizer.encode("\n\n")

        def header(role: str) -> list[int]:
            return header_start + tokenizer.encode(role) + header_end + header_gap

        yield begin, False, None
        for index, turn in enumerate(turns):
            yield header(turn.role), False, index
            yield tokenizer.encode(turn.content.strip()), turn.trained, index
            yield end_of_turn, turn.trained, index
        if generation_role is not None:
            yield header(generation_role), False, None


class PlainTemplate(ChatTemplate):
    """Role-free concatenation for base models: prompt lines, then the response and eos."""

    name = "plain"

    def check_tokenizer(self, tokenizer: Tokenizer) -> None:
        if tokenizer.eos_id is None:
            raise MissingSpecialTokenError(
                f"tokenizer {tokenizer.name!r} has no eos token (required by chat template "
                f"{self.name!r} to end assistant turns)"
            )

    def _segments(self, tokenizer, turns, generation_role):
        del generation_role  # responses follow the prompt lines directly
        self.check_tokenizer(tokenizer)
        if tokenizer.bos_id is not None:
            yield [tokenizer.bos_id], False, None
        for index, turn in enumerate(turns):
            if turn.is_response:
                yield tokenizer.encode(turn.content) + [tokenizer.eos_id], turn.trained, index
            else:
                yield tokenizer.encode(turn.content + "\n"), False, index


CHAT_TEMPLATES: dict[str, ChatTemplate] = {
    template.name: template for template in (ChatMLTemplate(), Llama3Template(), PlainTemplate())
}


def get_chat_template(name: str) -> ChatTemplate:
    """The registered template called `name` (one of `CHAT_TEMPLATES`)."""
    if name not in CHAT_TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; known: {sorted(CHAT_TEMPLATES)}")
    return CHAT_TEMPLATES[name]
