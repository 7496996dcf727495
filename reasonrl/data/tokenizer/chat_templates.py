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
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from reasonrl.data.tokenizer.base import MissingSpecialTokenError, Tokenizer

ASSISTANT_ROLE = "assistant"

Message = Mapping[str, str]
Segment = tuple[list[int], bool]  # (token ids, belongs to an assistant response)


@dataclasses.dataclass(frozen=True)
class RenderedChat:
    """A rendered conversation.

    Attributes:
      token_ids: int32 [L] ids of the whole conversation.
      assistant_mask: bool [L], True on assistant response tokens incl. their end-of-turn token.
    """

    token_ids: np.ndarray
    assistant_mask: np.ndarray


def _validated(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """(role, content) pairs; raises ValueError naming the first bad message."""
    pairs = []
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise ValueError(
                f"message {index} must have string 'role' and 'content' fields, got {message!r}"
            )
        pairs.append((role, content))
    return pairs


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
    ) -> RenderedChat:
        """Token ids and assistant mask of `messages` (dicts with "role" and "content")."""
        segments = list(self._segments(tokenizer, _validated(messages), add_generation_prompt))
        lengths = np.array([len(ids) for ids, _ in segments], dtype=np.int64)
        flags = np.array([is_assistant for _, is_assistant in segments], dtype=bool)
        pieces = [np.asarray(ids, dtype=np.int32) for ids, _ in segments]
        token_ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        return RenderedChat(token_ids=token_ids, assistant_mask=np.repeat(flags, lengths))

    def _special(self, tokenizer: Tokenizer, token: str) -> list[int]:
        return [tokenizer.special_token_id(token, required_by=f"chat template {self.name!r}")]

    @abc.abstractmethod
    def _segments(
        self, tokenizer: Tokenizer, messages: list[tuple[str, str]], add_generation_prompt: bool
    ) -> Iterator[Segment]:
        """Yields the segments of the conversation in order."""


class ChatMLTemplate(ChatTemplate):
    """Qwen's ChatML format (no default system prompt is inserted)."""

    name = "chatml"
    special_tokens = ("<|im_start|>", "<|im_end|>")

    def _segments(self, tokenizer, messages, add_generation_prompt):
        start, end = (self._special(tokenizer, token) for token in self.special_tokens)
        newline = tokenizer.encode("\n")
        for role, content in messages:
            is_assistant = role == ASSISTANT_ROLE
            yield start + tokenizer.encode(f"{role}\n"), False
            yield tokenizer.encode(content), is_assistant
            yield end, is_assistant
            yield newline, False
        if add_generation_prompt:
            yield start + tokenizer.encode(f"{ASSISTANT_ROLE}\n"), False


class Llama3Template(ChatTemplate):
    """Llama 3 format; contents are stripped as in Meta's template."""

    name = "llama3"
    special_tokens = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")

    def _segments(self, tokenizer, messages, add_generation_prompt):
        begin, header_start, header_end, end_of_turn = (
            self._special(tokenizer, token) for token in self.special_tokens
        )
        header_gap = tokenizer.encode("\n\n")

        def header(role: str) -> list[int]:
            return header_start + tokenizer.encode(role) + header_end + header_gap

        yield begin, False
        for role, content in messages:
            is_assistant = role == ASSISTANT_ROLE
            yield header(role), False
            yield tokenizer.encode(content.strip()), is_assistant
            yield end_of_turn, is_assistant
        if add_generation_prompt:
            yield header(ASSISTANT_ROLE), False


class PlainTemplate(ChatTemplate):
    """Role-free concatenation for base models: prompt lines, then the response and eos."""

    name = "plain"

    def check_tokenizer(self, tokenizer: Tokenizer) -> None:
        if tokenizer.eos_id is None:
            raise MissingSpecialTokenError(
                f"tokenizer {tokenizer.name!r} has no eos token (required by chat template "
                f"{self.name!r} to end assistant turns)"
            )

    def _segments(self, tokenizer, messages, add_generation_prompt):
        self.check_tokenizer(tokenizer)
        if tokenizer.bos_id is not None:
            yield [tokenizer.bos_id], False
        for role, content in messages:
            if role == ASSISTANT_ROLE:
                yield tokenizer.encode(content) + [tokenizer.eos_id], True
            else:
                yield tokenizer.encode(content + "\n"), False


CHAT_TEMPLATES: dict[str, ChatTemplate] = {
    template.name: template for template in (ChatMLTemplate(), Llama3Template(), PlainTemplate())
}


def get_chat_template(name: str) -> ChatTemplate:
    """The registered template called `name` (one of `CHAT_TEMPLATES`)."""
    if name not in CHAT_TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; known: {sorted(CHAT_TEMPLATES)}")
    return CHAT_TEMPLATES[name]
