"""Real-size presets build the parameter counts of the released checkpoints."""

import pytest

from reasonrl import models

# Totals of the released safetensors checkpoints (tied embeddings counted once).
RELEASED_PARAMETER_COUNTS = {
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-7b": 7_615_616_512,
    "qwen2.5-math-1.5b": 1_543_714_304,
    "qwen3-0.6b": 596_049_920,
    "llama3.2-1b": 1_235_814_400,
    "llama3.1-8b": 8_030_261_248,
}


@pytest.mark.parametrize("name", sorted(RELEASED_PARAMETER_COUNTS))
def test_parameter_count_matches_release(name):
    assert models.num_params(models.get_preset(name)) == RELEASED_PARAMETER_COUNTS[name]


def test_small_preset_is_about_20m():
    assert 15e6 < models.num_params(models.get_preset("small-20m")) < 25e6


def test_unknown_preset_lists_choices():
    with pytest.raises(KeyError, match="qwen3-0.6b"):
        models.get_preset("qwen9-huge")


def test_overrides_apply():
    config = models.get_preset("qwen3-0.6b", dtype="bfloat16", remat=True)
    assert config.dtype == "bfloat16" and config.remat and config.num_layers == 28
