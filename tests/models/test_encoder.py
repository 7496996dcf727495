"""The BERT sentence encoder: parity with sentence-transformers on all-MiniLM-L6-v2, with
transformers on a tiny random BERT (also sharded), truncation, compilation, errors."""

import json
import shutil

import jax
import numpy as np
import pytest

from reasonrl import models, parallel
from reasonrl.data.tokenizer.base import MissingSpecialTokenError
from reasonrl.diversity import load_prompts
from reasonrl.models import encoder as encoder_lib
from tests.diversity.tiny_bert import MAX_SEQ_LENGTH, make_tiny_bert


def _varied_sentences() -> list[str]:
    """A few hundred texts: NoveltyBench prompts (some far beyond 256 tokens), empty and blank
    strings, punctuation, accents, CJK, emoji, numbers and very long repetitions."""
    texts = [p.prompt for p in load_prompts("noveltybench_curated")]
    texts += [p.prompt for p in load_prompts("noveltybench_wildchat")[:150]]
    texts += ["", " ", "\n\t", ".", "Hello!", "hello", "HELLO, World?!", "naïve café résumé"]
    texts += ["東京は日本の首都です。", "emoji 🎉🚀 and symbols ∑∫√ ≤ ≥", "3.14159 × 2 = 6.28318"]
    texts += ["word " * 600, "The quick brown fox jumps over the lazy dog. " * 80]
    return texts


@pytest.fixture(scope="module")
def minilm():
    return models.SentenceEncoder.from_directory()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_bert")
    return make_tiny_bert(directory), directory


def test_default_directory_is_the_installed_package():
    directory = models.default_encoder_directory()
    assert (directory / "model.safetensors").is_file()
    assert directory.parent.name == encoder_lib.DEFAULT_ENCODER_PACKAGE


def test_matches_sentence_transformers(minilm):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    texts = _varied_sentences()
    assert len(texts) > 250 and max(len(minilm.tokenizer.encode(t)) for t in texts) > 700
    reference = sentence_transformers.SentenceTransformer(
        str(models.default_encoder_directory()), device="cpu"
    ).encode(texts, batch_size=32, convert_to_numpy=True)
    ours = minilm.encode(texts, batch_size=32)
    assert ours.shape == reference.shape == (len(texts), 384) and ours.dtype == np.float32
    cosine = np.sum(ours * reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert np.max(1.0 - cosine) < 1e-5
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_over_long_text_keeps_its_first_tokens(minilm):
    text = "one two three four five six seven " * 100
    full = minilm.tokenizer.encode(text)
    assert len(full) == 700  # tokenizer.json's own max_length of 128 is switched off
    ids = minilm.token_ids(text)
    assert len(ids) == minilm.max_length == 256
    assert ids == [minilm.cls_id, *full[:254], minilm.sep_id]
    assert minilm.token_ids("") == [minilm.cls_id, minilm.sep_id]


def _torch_mean_pooled(model, encoder, texts) -> np.ndarray:
    """Independent reference: transformers BertModel, masked mean, L2 normalisation."""
    import torch

    rows = [encoder.token_ids(text) for text in texts]
    width = max(len(row) for row in rows)
    tokens = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    with torch.no_grad():
        hidden = model(input_ids=tokens, attention_mask=mask).last_hidden_state
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def test_tiny_bert_matches_transformers_unsharded_and_sharded(tiny_bert):
    model, directory = tiny_bert
    texts = ["a short one", "", "x " * 200, "Mixed CASE, punctuation... and 123 numbers"] * 3
    unsharded = models.SentenceEncoder.from_directory(directory)
    assert unsharded.max_length == MAX_SEQ_LENGTH
    expected = _torch_mean_pooled(model, unsharded, texts)
    np.testing.assert_allclose(unsharded.encode(texts, batch_size=4), expected, atol=1e-5)

    mesh = parallel.make_mesh((2, 2, 2))
    sharded = models.SentenceEncoder.from_directory(directory, mesh=mesh)
    query = sharded.params["layers"]["query"]["kernel"]  # [L, D, H, Dh]
    assert query.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor", None)
    np.testing.assert_allclose(sharded.encode(texts, batch_size=3), expected, atol=1e-5)


def test_one_compilation_per_length_bucket(tiny_bert):
    _, directory = tiny_bert
    encoder = models.SentenceEncoder.from_directory(directory)
    jitted = encoder_lib._embed_fn(encoder.config, None)
    before = jitted._cache_size()
    for count in (8, 13, 21):  # 8-row batches, all texts in the 16-token bucket
        encoder.encode([f"text number {i}" for i in range(count)], batch_size=8)
    assert jitted._cache_size() == before + 1


def test_length_buckets():
    assert [encoder_lib.length_bucket(n, 256) for n in (1, 2, 16, 17, 100, 256, 300)] == [
        16, 16, 16, 32, 128, 256, 256,
    ]  # fmt: skip


def test_errors_name_what_is_wrong(tiny_bert, tmp_path):
    _, directory = tiny_bert
    with pytest.raises(models.EncoderNotFoundError, match="no config.json"):
        models.SentenceEncoder.from_directory(tmp_path / "nowhere")
    not_bert = tmp_path / "not_bert"
    shutil.copytree(directory, not_bert)
    config = json.loads((not_bert / "config.json").read_text())
    (not_bert / "config.json").write_text(json.dumps({**config, "model_type": "qwen2"}))
    with pytest.raises(models.ConfigError, match=r"not_bert/config.json: model_type 'qwen2'"):
        models.SentenceEncoder.from_directory(not_bert)
    wrong_shape = tmp_path / "wrong_shape"
    shutil.copytree(directory, wrong_shape)
    (wrong_shape / "config.json").write_text(json.dumps({**config, "intermediate_size": 40}))
    with pytest.raises(
        models.CheckpointError,
        match=r"wrong_shape/model.safetensors: tensor 'encoder.layer.0.intermediate.dense.bias' "
        r"has shape \(48,\), expected \(40,\)",
    ):
        models.SentenceEncoder.from_directory(wrong_shape)
    no_cls = tmp_path / "no_cls"
    shutil.copytree(directory, no_cls)
    tokenizer = json.loads((no_cls / "tokenizer.json").read_text())
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["content"] != "[CLS]"]
    del tokenizer["model"]["vocab"]["[CLS]"]
    (no_cls / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(MissingSpecialTokenError, match=r"\[CLS\]"):
        models.SentenceEncoder.from_directory(no_cls)
