"""Chat templates: rendered text, assistant masks, and agreement with Hugging Face's Jinja."""

from __future__ import annotations

import os

import numpy as np
import pytest

from reasonrl.data import HFTokenizer, MissingSpecialTokenError, get_chat_template
from tests.data.helpers import CHATML_JINJA, LLAMA3_JINJA

CONVERSATION = [
    {"role": "system", "content": "You solve grade-school math."},
    {"role": "user", "content": "Natalia sold 48 clips in April.\nHow many in May?"},
    {"role": "assistant", "content": "She sold 48/2 = 24 clips in May.\n#### 24"},
    {"role": "user", "content": " And in total? "},
    {"role": "assistant", "content": "  48+24 = 72 clips.\n#### 72 "},
]


def reference_text(template: str, messages, tokenizer, add_generation_prompt=False) -> str:
    """The conversation written out by hand, as the model family expects it."""
    if template == "chatml":
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")
    if template == "llama3":
        text = "<|begin_of_text|>" + "".join(
            f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
            for m in messages
        )
        header = "<|start_header_id|>assistant<|end_header_id|>\n\n"
        return text + (header if add_generation_prompt else "")
    eos = tokenizer.decode([tokenizer.eos_id])
    bos = "" if tokenizer.bos_id is None else tokenizer.decode([tokenizer.bos_id])
    return bos + "".join(
        m["content"] + (eos if m["role"] == "assistant" else "\n") for m in messages
    )


def end_of_turn_id(template: str, tokenizer) -> int:
    token = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>"}.get(template)
    return tokenizer.eos_id if token is None else tokenizer.special_token_id(token)


def expected_response(template: str, content: str) -> str:
    return content.strip() if template == "llama3" else content


def runs(mask: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, stop, value) of the maximal constant runs of a boolean array."""
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(mask)]
    return [(a, b, bool(mask[a])) for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("template_name", ["chatml", "llama3", "plain"])
def test_mask_covers_exactly_assistant_content_and_end_of_turn(any_tokenizer, template_name):
    tokenizer = any_tokenizer
    rendered = get_chat_template(template_name).render(tokenizer, CONVERSATION)
    ids, mask = rendered.token_ids, rendered.assistant_mask
    assert ids.dtype == np.int32 and mask.dtype == bool and ids.shape == mask.shape

    pieces = runs(mask)
    assistant_pieces = [(a, b) for a, b, is_assistant in pieces if is_assistant]
    responses = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]
    assert len(assistant_pieces) == len(responses)
    eot = end_of_turn_id(template_name, tokenizer)
    for (start, stop), response in zip(assistant_pieces, responses):
        assert ids[stop - 1] == eot
        assert tokenizer.decode(ids[start : stop - 1]) == expected_response(template_name, response)
        assert eot not in ids[start : stop - 1]
    # The runs, decoded one by one, give back the whole conversation: nothing is outside them.
    decoded = "".join(tokenizer.decode(ids[a:b]) for a, b, _ in pieces)
    assert decoded == reference_text(template_name, CONVERSATION, tokenizer)


@pytest.mark.parametrize("template_name", ["chatml", "llama3"])
def test_generation_prompt(any_tokenizer, template_name):
    prompt = CONVERSATION[:2]
    rendered = get_chat_template(template_name).render(
        any_tokenizer, prompt, add_generation_prompt=True
    )
    assert not rendered.assistant_mask.any()
    expected = reference_text(template_name, prompt, any_tokenizer, add_generation_prompt=True)
    assert any_tokenizer.decode(rendered.token_ids) == expected


@pytest.mark.parametrize(
    "template_name, jinja", [("chatml", CHATML_JINJA), ("llama3", LLAMA3_JINJA)]
)
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_ids_match_transformers_apply_chat_template(
    hf_tokenizer_dir, hf_tokenizer, template_name, jinja, add_generation_prompt
):
    transformers = pytest.importorskip("transformers")
    reference = transformers.PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(hf_tokenizer_dir, "tokenizer.json")
    )
    messages = CONVERSATION if not add_generation_prompt else CONVERSATION[:4]
    expected = reference.apply_chat_template(
        messages, chat_template=jinja, tokenize=True, add_generation_prompt=add_generation_prompt
    )
    expected = expected["input_ids"] if hasattr(expected, "keys") else expected
    rendered = get_chat_template(template_name).render(
        hf_tokenizer, messages, add_generation_prompt=add_generation_prompt
    )
    assert rendered.token_ids.tolist() == list(expected)


def test_template_requires_its_special_tokens(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    plain = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    plain.pre_tokenizer = pre_tokenizers.Whitespace()
    plain.save(str(tmp_path / "tokenizer.json"))
    tokenizer = HFTokenizer(str(tmp_path / "tokenizer.json"))
    for name, token in [("chatml", "<|im_start|>"), ("llama3", "<|begin_of_text|>")]:
        with pytest.raises(MissingSpecialTokenError, match=rf"{token}.*chat template '{name}'"):
            get_chat_template(name).render(tokenizer, CONVERSATION)
    with pytest.raises(MissingSpecialTokenError, match="no eos token"):
        get_chat_template("plain").check_tokenizer(tokenizer)


def test_malformed_message_and_unknown_template(sp_tokenizer):
    with pytest.raises(ValueError, match="message 1 must have string 'role' and 'content'"):
        get_chat_template("chatml").render(sp_tokenizer, [CONVERSATION[0], {"role": "user"}])
    with pytest.raises(ValueError, match="unknown chat template 'vicuna'"):
        get_chat_template("vicuna")
