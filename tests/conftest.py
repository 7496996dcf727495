"""Test-wide set-up: 8 virtual CPU devices and a persistent JAX compilation cache.

Both must be configured before JAX initialises its backend, so this runs at import time.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = f"{_flags} --xla_force_host_platform_device_count=8".strip()

import jax  # noqa: E402

_cache_dir = os.environ.get(
    "REASONRL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "reasonrl", "jax")
)
jax.config.update("jax_compilation_cache_dir", _cache_dir)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def hf_checkpoints(tmp_path_factory):
    """kind -> (transformers model, directory it saved to): random tiny checkpoints that
    transformers itself creates, made once per test session."""
    from tests.helpers import HF_TINY_CONFIGS, make_hf_model, save_hf_model

    out = {}
    for kind in HF_TINY_CONFIGS:
        model = make_hf_model(kind)
        out[kind] = (model, save_hf_model(model, tmp_path_factory.mktemp(f"hf_{kind}")))
    return out


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """300 GSM8K documents (blank-line separated) and a 400-piece sentencepiece tokenizer
    trained on them: (corpus path, tokenizer .model path)."""
    import itertools

    from reasonrl import data as data_lib
    from reasonrl.paths import asset

    directory = tmp_path_factory.mktemp("corpus")
    text = asset("corpus", "gsm8k_train.txt").read_text()
    docs = list(itertools.islice((d for d in text.split("\n\n") if d.strip()), 300))
    corpus = directory / "corpus.txt"
    corpus.write_text("\n\n".join(docs) + "\n")
    model_path = data_lib.train_sentencepiece(str(corpus), str(directory / "tok"), vocab_size=400)
    return corpus, model_path
