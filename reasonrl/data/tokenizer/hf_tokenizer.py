"""`Tokenizer` backed by a Hugging Face `tokenizer.json` (the `tokenizers` library).

Special-token roles (bos/eos/pad) come from `tokenizer_config.json` (falling back to
`special_tokens_map.json`) next to `tokenizer.json` when present. The Jinja chat template in
those files is never executed; it is only inspected to name the matching built-in template
(`chat_template_name`). Truncation and padding settings stored in `tokenizer.json` (sentence
encoders ship `max_length: 128` and fixed padding) are switched off: `encode` returns every
token of the text, and callers cut or pad.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import tokenizers

from reasonrl.data.tokenizer.base import Tokenizer

CONFIG_FILENAMES = ("tokenizer_config.json", "special_tokens_map.json")
JINJA_TEMPLATE_FILENAME = "chat_template.jinja"

# A special token that only one template family uses -> the built-in template of that family.
CHAT_TEMPLATE_MARKERS = {"<|im_start|>": "chatml", "<|start_header_id|>": "llama3"}


def _token_content(entry: Any) -> str | None:
    """A special-token entry of tokenizer_config.json: a string, an AddedToken dict or null."""
    if isinstance(entry, dict):
        return entry.get("content")
    return entry


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _template_source(directory: str, config: dict[str, Any]) -> str:
    """All chat-template text found in the config (string or list of named templates)."""
    template = config.get("chat_template") or ""
    if isinstance(template, list):
        template = "\n".join(item.get("template", "") for item in template)
    jinja_path = os.path.join(directory, JINJA_TEMPLATE_FILENAME)
    if os.path.isfile(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            template += f.read()
    return template


class HFTokenizer(Tokenizer):
    """A `tokenizer.json` tokenizer (BPE, WordPiece, Unigram, ...)."""

    def __init__(self, tokenizer_json_path: str, config_path: str | None = None):
        """Loads `tokenizer_json_path`.

        Args:
          tokenizer_json_path: path of a `tokenizer.json` file.
          config_path: `tokenizer_config.json` with the bos/eos/pad roles. Default: the first of
            `CONFIG_FILENAMES` that exists next to `tokenizer_json_path`.
        """
        if not os.path.isfile(tokenizer_json_path):
            raise FileNotFoundError(f"tokenizer.json not found: {tokenizer_json_path!r}")
        self.name = tokenizer_json_path
        self._tokenizer = tokenizers.Tokenizer.from_file(tokenizer_json_path)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        directory = os.path.dirname(os.path.abspath(tokenizer_json_path))
        if config_path is None:
            candidates = (os.path.join(directory, name) for name in CONFIG_FILENAMES)
            config_path = next((path for path in candidates if os.path.isfile(path)), None)
        config = _read_json(config_path) if config_path else {}
        self._bos_id = self._role_id(config, "bos_token")
        self._eos_id = self._role_id(config, "eos_token")
        self._pad_id = self._role_id(config, "pad_token")
        source = _template_source(directory, config)
        self.chat_template_name: str | None = next(
            (name for marker, name in CHAT_TEMPLATE_MARKERS.items() if marker in source), None
        )
        self._vocab_size = max(self._tokenizer.get_vocab(with_added_tokens=True).values()) + 1

    def _role_id(self, config: dict[str, Any], role: str) -> int | None:
        token = _token_content(config.get(role))
        if token is None:
            return None
        return self.special_token_id(token, required_by=f"{role} in tokenizer_config.json")

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return self._frame(ids, add_bos, add_eos)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def bos_id(self) -> int | None:
        return self._bos_id

    @property
    def eos_id(self) -> int | None:
        return self._eos_id

    @property
    def declared_pad_id(self) -> int | None:
        return self._pad_id

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)
