"""Prompt templates render the documented strings; protocols resolve flags in the right order."""

import pytest

from evals.common import protocols
from reasonrl import data as data_lib
from reasonrl.data import prompt_templates

PROBLEM = "What is $1+1$?"
INSTRUCTION = r"Please reason step by step, and put your final answer within \boxed{}."

EXPECTED = {
    ("r1", "chatml"): f"<|im_start|>user\n{PROBLEM}\n{INSTRUCTION}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n",
    ("qwen_math", "chatml"): f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n"
    f"<|im_start|>user\n{PROBLEM}<|im_end|>\n<|im_start|>assistant\n",
    ("plain", "chatml"): f"<|im_start|>user\n{PROBLEM}<|im_end|>\n<|im_start|>assistant\n",
    ("r1", "llama3"): "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    f"{PROBLEM}\n{INSTRUCTION}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n<think>\n",
    ("r1", "plain"): f"{PROBLEM}\n{INSTRUCTION}\n<think>\n",
    ("plain", "plain"): f"{PROBLEM}\n",
}


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return data_lib.load_tokenizer(str(tiny_checkpoint))


@pytest.mark.parametrize("prompt_template, chat_template", sorted(EXPECTED))
def test_prompt_renders_documented_string(tokenizer, prompt_template, chat_template):
    ids = prompt_templates.prompt_token_ids(
        PROBLEM, prompt_template=prompt_template, chat_template=chat_template, tokenizer=tokenizer
    )
    assert tokenizer.decode(ids) == EXPECTED[prompt_template, chat_template]
    if chat_template == "plain":
        assert ids[0] == tokenizer.bos_id


def test_r1_instruction_is_the_published_text():
    assert prompt_templates.BOXED_INSTRUCTION == INSTRUCTION
    assert prompt_templates.get_prompt_template("r1").assistant_prefix == "<think>\n"
    with pytest.raises(ValueError, match="unknown prompt template"):
        prompt_templates.get_prompt_template("r2")


def test_stop_tokens_include_end_of_turn(tokenizer):
    assert prompt_templates.stop_token_ids(tokenizer, "plain") == [tokenizer.eos_id]
    assert prompt_templates.stop_token_ids(tokenizer, "chatml") == [
        tokenizer.eos_id,
        tokenizer.token_to_id("<|im_end|>"),
    ]


def test_protocol_presets_and_overrides():
    unset = {name: None for name in protocols.DEFAULT_SETTINGS}
    r1 = protocols.resolve_settings("r1", "aime24", unset)
    assert r1 == dict(
        temperature=0.6,
        top_p=0.95,
        top_k=0,
        max_new_tokens=32768,
        num_samples=64,
        prompt_template="r1",
    )
    assert protocols.resolve_settings("r1", "math500", unset)["num_samples"] == 4
    greedy = protocols.resolve_settings("qwen_math", "math500", unset)
    assert (greedy["temperature"], greedy["num_samples"], greedy["max_new_tokens"]) == (
        0.0,
        1,
        2048,
    )
    overridden = protocols.resolve_settings(
        "r1", "aime24", {**unset, "num_samples": 2, "temperature": 0.0}
    )
    assert (overridden["num_samples"], overridden["temperature"], overridden["top_p"]) == (
        2,
        0.0,
        0.95,
    )
    assert protocols.resolve_settings(None, "aime24", unset) == dict(protocols.DEFAULT_SETTINGS)
    with pytest.raises(ValueError, match="unknown protocol"):
        protocols.resolve_settings("r7", "aime24", unset)
