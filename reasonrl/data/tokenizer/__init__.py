"""Tokenizers (SentencePiece, Hugging Face tokenizer.json) and Python chat templates."""

from reasonrl.data.tokenizer.base import MissingSpecialTokenError, Tokenizer
from reasonrl.data.tokenizer.chat_templates import (
    CHAT_TEMPLATES,
    ChatMLTemplate,
    ChatTemplate,
    Llama3Template,
    PlainTemplate,
    RenderedChat,
    get_chat_template,
)
from reasonrl.data.tokenizer.hf_tokenizer import HFTokenizer
from reasonrl.data.tokenizer.loading import load_tokenizer
from reasonrl.data.tokenizer.sentencepiece_tokenizer import SentencePieceTokenizer
from reasonrl.data.tokenizer.training import CHAT_SPECIAL_TOKENS, train_sentencepiece

__all__ = [
    "CHAT_SPECIAL_TOKENS",
    "CHAT_TEMPLATES",
    "ChatMLTemplate",
    "ChatTemplate",
    "HFTokenizer",
    "Llama3Template",
    "MissingSpecialTokenError",
    "PlainTemplate",
    "RenderedChat",
    "SentencePieceTokenizer",
    "Tokenizer",
    "get_chat_template",
    "load_tokenizer",
    "train_sentencepiece",
]
