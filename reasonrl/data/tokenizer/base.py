"""The `Tokenizer` interface every data pipeline and sampler in reasonrl talks to."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from reasonrl.errors import ReasonRLError


class MissingSpecialTokenError(ReasonRLError, KeyError):
    """The tokenizer has no single id for a special token that a caller requires."""

    def __str__(self) -> str:  # KeyError would repr() the message.
        return str(self.args[0])


class Tokenizer(abc.ABC):
    """Text <-> token ids.

    `encode` never adds special tokens unless asked (`add_bos`/`add_eos`); chat templates add
    their own special tokens through `special_token_id`. Special-token strings that occur inside
    `text` (e.g. "<|im_end|>") are encoded as their single special id, as Hugging Face and
    SentencePiece (user-defined symbols) both do.
    """

    name: str

    @abc.abstractmethod
    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of `text`, optionally framed by `bos_id` / `eos_id`."""

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; special tokens are rendered as their strings."""

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """One more than the largest id the tokenizer can produce."""

    @property
    @abc.abstractmethod
    def bos_id(self) -> int | None:
        """Beginning-of-sequence id, or None when the tokenizer defines none (e.g. Qwen)."""

    @property
    @abc.abstractmethod
    def eos_id(self) -> int | None:
        """End-of-sequence id, or None when the tokenizer defines none."""

    @property
    @abc.abstractmethod
    def declared_pad_id(self) -> int | None:
        """Padding id the tokenizer itself declares, or None."""

    @abc.abstractmethod
    def token_to_id(self, token: str) -> int | None:
        """The single id of vocabulary entry `token`, or None when it is not one entry."""

    @property
    def pad_id(self) -> int:
        """Id written into padding positions: the declared pad, else eos, else 0.

        Padding positions always carry loss_mask 0 and segment_id 0, so the choice only has to
        be a valid id.
        """
        for candidate in (self.declared_pad_id, self.eos_id):
            if candidate is not None:
                return candidate
        return 0

    def special_token_id(self, token: str, *, required_by: str = "") -> int:
        """The single id of special token `token`; raises MissingSpecialTokenError otherwise."""
        token_id = self.token_to_id(token)
        if token_id is None:
            needed = f" (required by {required_by})" if required_by else ""
            raise MissingSpecialTokenError(
                f"tokenizer {self.name!r} has no single-id token {token!r}{needed}; add it as a "
                "special/user-defined token when building the tokenizer"
            )
        return token_id

    def _frame(self, ids: list[int], add_bos: bool, add_eos: bool) -> list[int]:
        """Prepends bos / appends eos as requested, erroring when the tokenizer lacks them."""
        if add_bos:
            if self.bos_id is None:
                raise MissingSpecialTokenError(f"tokenizer {self.name!r} has no bos token")
            ids = [self.bos_id, *ids]
        if add_eos:
            if self.eos_id is None:
                raise MissingSpecialTokenError(f"tokenizer {self.name!r} has no eos token")
            ids = [*ids, self.eos_id]
        return ids
