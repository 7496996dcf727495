"""Response quality from a reward-model export, against the model run on each pair alone."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

from evals.common.diversity_quality import RewardModelScorer, check_reward_model
from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.data.tokenizer.chat_templates import get_chat_template
from reasonrl.objectives.reward_model import REWARD_HEAD_FILE
from reasonrl.sampling.problem_runs import SettingsError


@pytest.fixture(scope="module")
def reward_export(tiny_checkpoint, tmp_path_factory):
    directory = tmp_path_factory.mktemp("reward") / "export"
    shutil.copytree(tiny_checkpoint, directory)
    hidden = models.read_hf_config(directory).hidden_size
    head = {
        "kernel": np.random.default_rng(0).normal(size=(hidden,)).astype(np.float32),
        "bias": np.asarray(0.25, np.float32),
    }
    safetensors.numpy.save_file(head, str(directory / REWARD_HEAD_FILE))
    return directory, head


def test_scores_equal_the_model_run_on_each_pair_alone(reward_export):
    directory, head = reward_export
    prompts = ["Name a colour.", "Tell me a joke about cats, please."] * 9  # 18 rows: 2 calls
    responses = ["Blue.", "", "A long answer " * 30] * 6
    scores = RewardModelScorer(str(directory), "chatml")(prompts, responses)
    assert scores.shape == (18,)
    config, params = models.load_hf_checkpoint(directory)
    tokenizer = data_lib.load_tokenizer(str(directory))
    last_hidden = jax.jit(
        lambda params, ids: models.hidden_states(
            config, params, ids, models.default_positions(ids), jnp.ones_like(ids)
        )[0][0, -1]
    )
    for row in range(6):  # rows 6.. repeat these pairs
        messages = [
            {"role": "user", "content": prompts[row]},
            {"role": "assistant", "content": responses[row]},
        ]
        ids = jnp.asarray([get_chat_template("chatml").render(tokenizer, messages).token_ids])
        expected = float(last_hidden(params, ids) @ head["kernel"] + head["bias"])
        assert scores[row] == pytest.approx(expected, abs=1e-4)
        assert scores[row + 6] == scores[row + 12] == pytest.approx(scores[row], abs=1e-5)
    assert len(set(np.round(scores, 4))) == 6  # not one constant


def test_a_directory_without_a_head_is_refused(tiny_checkpoint):
    with pytest.raises(SettingsError, match="--reward_model .*not a reward-model export"):
        check_reward_model(str(tiny_checkpoint))
