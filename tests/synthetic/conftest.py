"""A tiny random teacher for the distillation tests (tiny-qwen3, sentencepiece vocabulary)."""

import json
import shutil

import jax
import pytest

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.rewards import Problem

# Short statements keep the prompts (and the compiled prompt buckets) small.
PROBLEMS = [
    Problem(
        id=f"p{index}",
        problem=f"Tom has {index + 2} apples and buys 3 more. How many apples does he have?",
        answer=str(index + 5),
    )
    for index in range(5)
]


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory, tiny_corpus):
    """A Hugging Face checkpoint directory with its `tokenizer.model` (as the eval tests')."""
    _, model_file = tiny_corpus
    tokenizer = data_lib.load_tokenizer(model_file)
    config = models.get_preset(
        "tiny-qwen3", vocab_size=tokenizer.vocab_size, num_layers=1, max_position_embeddings=4096
    )
    params = models.init_params(config, jax.random.key(0))
    checkpoint = tmp_path_factory.mktemp("distill_teacher") / "checkpoint"
    models.save_hf_checkpoint(config, params, checkpoint)
    shutil.copy(model_file, checkpoint / "tokenizer.model")
    return checkpoint


@pytest.fixture(scope="session")
def teacher(teacher_dir):
    """(config, params, tokenizer) loaded from `teacher_dir` on the default device."""
    config, params = models.load_hf_checkpoint(teacher_dir)
    return config, params, data_lib.load_tokenizer(teacher_dir)


def write_problems(path, problems=PROBLEMS):
    """`problems` as JSONL with the default field names; returns `path`."""
    path.write_text(
        "".join(
            json.dumps({"id": p.id, "problem": p.problem, "answer": p.answer}) + "\n"
            for p in problems
        )
    )
    return path
