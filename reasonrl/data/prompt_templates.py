r"""Prompt templates by name: a problem -> chat messages plus text that opens the assistant reply.

==========  ==================================================================================
name        rendering
==========  ==================================================================================
r1          DeepSeek-R1: no system message; user = ``{problem}\n`` + BOXED_INSTRUCTION; the
            assistant reply is opened with ``<think>\n``.
qwen_math   Qwen2.5-Math ``qwen25-math-cot``: system = BOXED_INSTRUCTION; user = ``{problem}``.
plain       the problem alone as the user message (base models, "no template" evals).
==========  ==================================================================================

Used by the evals, RL rollouts and distillation. The messages go through a chat template
(``chatml``, ``llama3``, ``plain``) with the generation prompt; the assistant prefix is encoded
and appended after it. The completion the grader sees is the generated text only (the prefix is
not part of it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from reasonrl.data.tokenizer.base import Tokenizer
from reasonrl.data.tokenizer.chat_templates import get_chat_template

BOXED_INSTRUCTION = r"Please reason step by step, and put your final answer within \boxed{}."


@dataclasses.dataclass(frozen=True)
class PromptTemplate:
    """How one problem becomes a prompt.

    Attributes:
        name: registry key.
        messages: problem text -> chat messages (``role``/``content`` dicts).
        assistant_prefix: text that opens the assistant reply ("" for none).
    """

    name: str
    messages: Callable[[str], list[dict[str, str]]]
    assistant_prefix: str = ""


PROMPT_TEMPLATES: dict[str, PromptTemplate] = {
    template.name: template
    for template in (
        PromptTemplate(
            "r1",
            lambda problem: [{"role": "user", "content": f"{problem}\n{BOXED_INSTRUCTION}"}],
            "<think>\n",
        ),
        PromptTemplate(
            "qwen_math",
            lambda problem: [
                {"role": "system", "content": BOXED_INSTRUCTION},
                {"role": "user", "content": problem},
            ],
        ),
        PromptTemplate("plain", lambda problem: [{"role": "user", "content": problem}]),
    )
}

# Tokens that end an assistant turn under each chat template, besides the tokenizer's eos.
END_OF_TURN_TOKENS = {"chatml": ("<|im_end|>",), "llama3": ("<|eot_id|>",), "plain": ()}


def get_prompt_template(name: str) -> PromptTemplate:
    """The registered prompt template called ``name``."""
    if name not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown prompt template {name!r}; known: {sorted(PROMPT_TEMPLATES)}")
    return PROMPT_TEMPLATES[name]


def prompt_token_ids(
    problem: str, *, prompt_template: str, chat_template: str, tokenizer: Tokenizer
) -> list[int]:
    """Token ids of the full prompt for ``problem``: rendered chat + encoded assistant prefix."""
    template = get_prompt_template(prompt_template)
    rendered = get_chat_template(chat_template).render(
        tokenizer, template.messages(problem), add_generation_prompt=True
    )
    prefix = tokenizer.encode(template.assistant_prefix) if template.assistant_prefix else []
    return [int(token) for token in rendered.token_ids] + prefix


def stop_token_ids(tokenizer: Tokenizer, chat_template: str) -> list[int]:
    """The tokenizer's eos plus the chat template's end-of-turn tokens the tokenizer has."""
    stops = [] if tokenizer.eos_id is None else [tokenizer.eos_id]
    for token in END_OF_TURN_TOKENS[chat_template]:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None and token_id not in stops:
            stops.append(token_id)
    return stops
