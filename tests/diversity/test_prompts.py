"""The vendored NoveltyBench prompt sets and user JSONL prompt files."""

import json

import pytest

from reasonrl.diversity import PromptFileError, load_prompts


def test_vendored_sets():
    curated = load_prompts("noveltybench_curated")
    assert len(curated) == 100 and curated[0].id == "curated-0"
    counts = {}
    for prompt in curated:
        counts[prompt.category] = counts.get(prompt.category, 0) + 1
    assert counts == {
        "Factual Knowledge": 28,
        "Subjective Rankings & Opinions": 23,
        "Creativity": 20,
        "Random Generation & Selection": 15,
        "Character & Entity Naming": 7,
        "Product & Purchase Recommendations": 7,
    }
    wildchat = load_prompts("noveltybench_wildchat")
    assert len(wildchat) == 1000 and len({p.id for p in wildchat}) == 1000
    assert all(p.category is None and p.prompt for p in wildchat)


def test_user_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    lines = [{"prompt": "Name a colour."}, {"id": "q2", "prompt": "A city?", "category": "geo"}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    prompts = load_prompts(str(path))
    assert [(p.id, p.prompt, p.category) for p in prompts] == [
        ("line-1", "Name a colour.", None),
        ("q2", "A city?", "geo"),
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"prompt": "a"}\nnot json\n', r"prompts.jsonl:2: not a JSON line"),
        ('{"text": "a"}\n', r"prompts.jsonl:1: a record needs a 'prompt' string"),
        ('{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n', r"id 'x' is used twice"),
        ("\n", r"prompts.jsonl: holds no prompt"),
    ],
)
def test_bad_files_are_named(tmp_path, content, message):
    path = tmp_path / "prompts.jsonl"
    path.write_text(content)
    with pytest.raises(PromptFileError, match=message):
        load_prompts(str(path))
    with pytest.raises(PromptFileError, match="not one of"):
        load_prompts(str(tmp_path / "missing.jsonl"))
