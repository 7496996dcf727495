"""A tiny random BERT directory made by transformers, with all-MiniLM-L6-v2's tokenizer files:
encoder tests that need no real weights, and a fast encoder for end-to-end runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
TINY_BERT = dict(
    vocab_size=30522,  # the MiniLM tokenizer's
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=64,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
)
MAX_SEQ_LENGTH = 40


def make_tiny_bert(directory: Path, seed: int = 0):
    """Saves a random BertModel (non-trivial LayerNorms and biases) plus the default encoder's
    tokenizer files and a sentence_bert_config.json into ``directory``; returns the model."""
    import torch
    import transformers

    from reasonrl.models import default_encoder_directory

    torch.manual_seed(seed)
    model = transformers.BertModel(transformers.BertConfig(**TINY_BERT), add_pooling_layer=True)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 0.1 if "LayerNorm.weight" not in name else 0.3
            parameter.copy_(
                (1.0 if "LayerNorm.weight" in name else 0.0) + scale * torch.randn_like(parameter)
            )
    model.eval().save_pretrained(directory)
    source = default_encoder_directory()
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, directory / name)
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": MAX_SEQ_LENGTH})
    )
    return model
