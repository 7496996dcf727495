"""The RL loop end to end on a tiny random model: metrics, first-update identities, resume,
dynamic sampling and config errors."""

import jax
import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.job import run_job
from reasonrl.rl.loop import read_rollout_metrics, rl_options, run_rl_stage
from reasonrl.synthetic import arithmetic
from reasonrl.train import job_config, stage_config
from reasonrl.train.config import JobConfigError, validate_job
from tests.helpers import read_jsonl
from tests.train.stages import TINY_MODEL


@pytest.fixture(scope="module")
def addition(tmp_path_factory):
    """(files of a small addition dataset, a tokenizer trained on it, its path)."""
    files = arithmetic.write_addition_dataset(
        tmp_path_factory.mktemp("addition"), train=400, test=20, preference_pairs=10
    )
    path = data_lib.train_sentencepiece(
        str(files["corpus"]), str(tmp_path_factory.mktemp("tok")), vocab_size=278
    )
    return files, data_lib.load_tokenizer(path), path


def rl_stage(files, **rl_overrides):
    stage = stage_config()
    stage.rl = rl_options()
    stage.mesh.update(data=2, fsdp=2, tensor=2)  # 8 rows per rollout, 4 per update
    stage.model.preset = "tiny-qwen3"
    stage.model.overrides = dict(TINY_MODEL, max_position_embeddings=64)
    stage.data = dict(source=dict(type="jsonl", path=str(files["sft_train"])))
    stage.eval_data = dict(source=dict(type="jsonl", path=str(files["test"])))
    stage.objective.update(
        name="policy_gradient", kl_coef=0.04, loss_aggregation="seq_mean_token_mean"
    )
    stage.rl.update(group_size=4, max_new_tokens=4, num_minibatches=2, eval_size=4)
    stage.rl.update(**rl_overrides)
    stage.optimizer.update(learning_rate=1e-2, schedule="constant", warmup_steps=0)
    stage.train.update(
        steps=3,
        batch_size=2,
        seq_len=36,
        log_every=1,
        eval_every=2,
        checkpoint_every=1,
        keep_checkpoints=5,
        async_checkpointing=False,
    )
    return stage


def test_rl_job_logs_rollout_and_update_health(addition, tmp_path):
    files, _, tokenizer_path = addition
    config = job_config()
    config.tokenizer.path = tokenizer_path
    config.stages.rl = rl_stage(files)
    result = run_job(config, tmp_path)
    workdir = tmp_path / "rl"
    assert result.stages["rl"].steps == 3
    assert (workdir / "export" / "config.json").is_file()
    assert (workdir / "learning_curve.png").stat().st_size > 0

    rollouts = read_rollout_metrics(workdir / "metrics.jsonl")
    assert sorted(rollouts) == [0, 1, 2, 3]  # step 0: the eval before training
    assert "eval/accuracy" in rollouts[0] and "eval/accuracy" in rollouts[2]
    for step in (1, 2, 3):
        record = rollouts[step]
        for key in (
            "rollout/reward",
            "rollout/accuracy",
            "rollout/response_length",
            "rollout/truncated_fraction",
            "rollout/reward_correctness",
            "time/sample_s",
            "time/update_s",
            "time/overhead_ratio",
        ):
            assert key in record, key
        assert 0 <= record["rollout/accuracy"] <= 1
        assert record["step"] == step * 2  # two optimizer updates per rollout step

    updates = [r for r in read_jsonl(workdir / "metrics.jsonl") if "train/loss" in r]
    assert [r["step"] for r in updates] == list(range(6))
    first = updates[0]
    # Update 1 of a rollout: pi_old was scored with these very params, the reference is the
    # initial params and the sampler drew from them: ratio 1, KL 0, sampler gap ~0.
    assert first["train/ratio_min"] == pytest.approx(1.0, abs=1e-5)
    assert first["train/ratio_max"] == pytest.approx(1.0, abs=1e-5)
    assert abs(first["train/kl"]) < 1e-6
    assert first["train/sampler_logprob_abs_diff"] < 1e-4
    for key in (
        "train/clip_fraction_low",
        "train/clip_fraction_high",
        "train/entropy",
        "train/grad_norm",
    ):
        assert np.isfinite(first[key]), key
    # Update 2 follows an optimizer step on the same rollout: the params moved.
    second = updates[1]
    assert second["train/ratio_max"] - second["train/ratio_min"] > 1e-6


def test_rl_stage_resumes_exactly(addition, tmp_path):
    files, tokenizer, _ = addition
    stage = rl_stage(files, eval_size=0)
    stage.train.steps = 4

    def final_params(workdir):
        result = run_rl_stage(stage, workdir, tokenizer=tokenizer)
        assert result.steps == 4
        _, params = models.load_hf_checkpoint(result.export_dir)
        return params, read_rollout_metrics(workdir / "metrics.jsonl")

    straight, straight_metrics = final_params(tmp_path / "straight")
    interrupted = tmp_path / "interrupted"
    first = run_rl_stage(stage, interrupted, tokenizer=tokenizer, max_steps=2)
    assert first.steps == 2 and first.export_dir is None
    resumed, resumed_metrics = final_params(interrupted)
    assert jax.tree.all(jax.tree.map(lambda a, b: np.array_equal(a, b), straight, resumed))
    for step in (1, 2, 3, 4):
        for key in ("rollout/reward", "rollout/response_length"):
            assert straight_metrics[step][key] == resumed_metrics[step][key]


def test_dynamic_sampling_drops_uninformative_groups(addition, tmp_path):
    files, tokenizer, _ = addition
    stage = rl_stage(files, dynamic_sampling=True, max_rollout_rounds=2, eval_size=0)
    stage.train.steps = 1
    run_rl_stage(stage, tmp_path, tokenizer=tokenizer)
    record = read_rollout_metrics(tmp_path / "metrics.jsonl")[1]
    assert record["rollout/groups_seen"] == 2 * record["rollout/rounds"]
    informative = record["rollout/groups_seen"] - record["rollout/groups_dropped"]
    # Enough informative groups end the rounds early; otherwise all 2 rounds run and the
    # batch keeps what it found (the rest of it stays empty).
    assert record["rollout/groups_kept"] == min(2, informative)
    assert 1 <= record["rollout/rounds"] <= 2
    if informative < 2:
        assert record["rollout/rounds"] == 2
    updates = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "train/loss" in r]
    assert all(np.isfinite(r["train/loss"]) for r in updates)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.rl.__setattr__("advantage", "ppo"), r"stages\.rl\.rl\.advantage: 'ppo'"),
        (
            lambda s: s.rl.__setattr__("num_minibatches", 3),
            r"stages\.rl\.rl\.num_minibatches: 8 rollout rows .* do not split into 3",
        ),
        (
            lambda s: s.train.__setattr__("seq_len", 4),
            r"stages\.rl\.train\.seq_len: 4 leaves no room",
        ),
        (lambda s: s.objective.__setattr__("name", "sft"), r"stages\.rl\.rl: unknown key"),
        (
            lambda s: s.objective.__setattr__("clip_eps_low", 1.5),
            r"stages\.rl\.objective\.clip_eps_low: must be in \[0, 1\)",
        ),
        (
            lambda s: s.objective.__setattr__("importance_ratio", "seq"),
            r"stages\.rl\.objective\.importance_ratio: 'seq'; choose from",
        ),
        (
            lambda s: s.rl.__setattr__("dynamic_sampling_filter", "acc"),
            r"stages\.rl\.rl\.dynamic_sampling_filter: 'acc'",
        ),
        (
            lambda s: s.objective.__setattr__("temperature", 0.7),
            r"stages\.rl\.objective\.temperature: is taken from rl\.temperature",
        ),
        (lambda s: s.rl.__setattr__("reward", "vibes"), r"stages\.rl\.rl\.reward: 'vibes'"),
        (
            lambda s: s.rl.__setattr__("overlong_cache_length", 4),
            r"stages\.rl\.rl\.overlong_cache_length: 4 must be below max_new_tokens=4",
        ),
        (
            lambda s: s.rl.__setattr__("diversity_encoder", "/no/such/encoder"),
            r"stages\.rl\.rl\.diversity_encoder: /no/such/encoder is not a sentence-encoder",
        ),
    ],
)
def test_rl_config_errors_name_the_field(addition, edit, message):
    files, _, tokenizer_path = addition
    config = job_config()
    config.tokenizer.path = tokenizer_path
    config.stages.rl = rl_stage(files)
    edit(config.stages.rl)
    with pytest.raises(JobConfigError, match=message):
        validate_job(config, num_devices=8)


def test_rl_stage_logs_group_embedding_similarity(addition, tmp_path):
    """With rl.diversity_encoder, each step logs the groups' mean pairwise cosine: 1 for a
    group of identical completions, equal to the encoder's own pairwise cosine otherwise."""
    from reasonrl.diversity.hivemind import mean_pairwise_similarity
    from reasonrl.models import SentenceEncoder
    from reasonrl.rl.loop import _group_diversity_metrics
    from tests.diversity.tiny_bert import make_tiny_bert

    files, tokenizer, _ = addition
    encoder_dir = tmp_path / "encoder"
    make_tiny_bert(encoder_dir)
    stage = rl_stage(files, eval_size=0, diversity_encoder=str(encoder_dir))
    stage.train.steps = 1
    run_rl_stage(stage, tmp_path / "rl", tokenizer=tokenizer)
    record = read_rollout_metrics(tmp_path / "rl" / "metrics.jsonl")[1]
    assert -1.0 <= record["rollout/pairwise_embedding_similarity"] <= 1.0

    encoder = SentenceEncoder.from_directory(encoder_dir)
    texts = ["12", "12", "twelve", "1 2", "7", "7", "7", "7"]
    rollout = {"completion_text": np.array(texts, dtype=object)}
    metrics = _group_diversity_metrics(rollout, 4, encoder)
    embeddings = encoder.encode(texts)
    expected = np.mean([mean_pairwise_similarity(embeddings[:4]), 1.0])
    assert metrics["rollout/pairwise_embedding_similarity"] == pytest.approx(expected, abs=1e-5)
