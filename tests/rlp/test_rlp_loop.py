"""The RLP loop end to end on a tiny random model: the job, its metrics and curve, the EMA
teacher in the train state, exact resume, and config errors that name the field."""

import jax
import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.data.tokenizer.training import special_tokens
from reasonrl.job import run_job
from reasonrl.rlp.loop import read_rlp_metrics, run_rlp_stage
from reasonrl.synthetic import digit_sums
from reasonrl.train import job_config, stage_config
from reasonrl.train.config import JobConfigError, validate_job
from tests.helpers import read_jsonl
from tests.train.stages import TINY_MODEL


def small_digit_sums(tmp_path_factory):
    """(files of a small digit-sums dataset, the path of a tokenizer trained on it with the
    thinking markers)."""
    files = digit_sums.write_digit_sums_dataset(
        tmp_path_factory.mktemp("digit_sums"),
        pretrain_count=300,
        midtrain_count=50,
        rlp_count=100,
        test_count=20,
    )
    path = data_lib.train_sentencepiece(
        str(files["pretrain"]),
        str(tmp_path_factory.mktemp("tok")),
        vocab_size=273,
        special_tokens=special_tokens(thinking_markers=True),
    )
    return files, path


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(files of a small digit-sums dataset, a tokenizer trained on it, its path)."""
    files, path = small_digit_sums(tmp_path_factory)
    return files, data_lib.load_tokenizer(path), path


def rlp_stage(files, **objective):
    stage = stage_config()
    stage.mesh.update(data=2, fsdp=2, tensor=2)
    stage.model.preset = "tiny-qwen3"
    stage.model.overrides = dict(TINY_MODEL, max_position_embeddings=64)
    documents = dict(task=dict(type="pretrain"), packing=dict(type="pad"))
    stage.data = dict(documents, source=dict(type="text", path=str(files["rlp"])))
    stage.eval_data = dict(documents, source=dict(type="text", path=str(files["test"])))
    stage.objective.update(
        name="rlp", group_size=2, num_positions=2, min_context=2, max_thought_tokens=6
    )
    stage.objective.update(num_minibatches=2, **objective)
    stage.optimizer.update(learning_rate=1e-2, schedule="constant", warmup_steps=0)
    stage.train.update(
        steps=3,
        batch_size=2,  # 2 documents x 2 positions x 2 thoughts = 8 rows, 4 per update
        seq_len=24,
        log_every=1,
        eval_every=2,
        eval_batches=1,
        checkpoint_every=1,
        keep_checkpoints=5,
        async_checkpointing=False,
    )
    return stage


def test_rlp_job_logs_information_gain_and_update_health(digits, tmp_path):
    files, _, tokenizer_path = digits
    config = job_config()
    config.tokenizer.path = tokenizer_path
    config.stages.rlp = rlp_stage(files)
    result = run_job(config, tmp_path)
    workdir = tmp_path / "rlp"
    assert result.stages["rlp"].steps == 3
    assert (workdir / "export" / "config.json").is_file()
    assert (workdir / "info_gain.png").stat().st_size > 0

    records = read_rlp_metrics(workdir / "metrics.jsonl")
    assert sorted(records) == [0, 1, 2, 3]  # step 0: the eval before training
    assert {"eval/nll", "eval/thought_gain"} <= set(records[0]) and "eval/nll" in records[2]
    flops = [records[s]["rlp/flops"] for s in (1, 2, 3)]
    assert flops[0] > 0 and np.allclose(np.diff(flops), flops[0], rtol=0.5)  # cumulative
    drift = [records[s]["rlp/ema_drift"] for s in (1, 2, 3)]
    assert 0 < drift[0] < drift[2]  # φ lags θ more and more at a high learning rate
    for step in (1, 2, 3):
        record = records[step]
        assert record["rlp/info_gain"] == pytest.approx(
            record["rlp/s_pred"] - record["rlp/s_ema"], abs=1e-5
        )
        assert 0 <= record["rlp/info_gain_positive_fraction"] <= 1
        assert 1 <= record["rlp/thought_length"] <= 6
        assert record["step"] == 2 * step  # two optimizer updates per step
    updates = [r for r in read_jsonl(workdir / "metrics.jsonl") if "train/loss" in r]
    assert [r["step"] for r in updates] == list(range(6))
    # the first update of a step: π_old = π_θ, ratio 1; the second follows an update
    assert updates[0]["train/ratio_min"] == pytest.approx(1.0, abs=1e-5)
    assert updates[0]["train/ratio_max"] == pytest.approx(1.0, abs=1e-5)
    assert updates[1]["train/ratio_max"] - updates[1]["train/ratio_min"] > 1e-6
    for key in ("train/clip_fraction_low", "train/entropy", "train/thought_length"):
        assert np.isfinite(updates[0][key]), key


def test_rlp_stage_resumes_exactly(digits, tmp_path):
    """Killed after step 2 and rerun: the same params, and the same rewards and EMA drift at
    every step (the EMA teacher is restored from the checkpoint, not re-initialised)."""
    files, tokenizer, _ = digits
    stage = rlp_stage(files)
    stage.eval_data = None
    stage.train.steps = 4

    def final(workdir):
        result = run_rlp_stage(stage, workdir, tokenizer=tokenizer)
        assert result.steps == 4
        _, params = models.load_hf_checkpoint(result.export_dir)
        return params, read_rlp_metrics(workdir / "metrics.jsonl")

    straight, straight_metrics = final(tmp_path / "straight")
    interrupted = tmp_path / "interrupted"
    first = run_rlp_stage(stage, interrupted, tokenizer=tokenizer, max_steps=2)
    assert first.steps == 2 and first.export_dir is None
    resumed, resumed_metrics = final(interrupted)
    assert jax.tree.all(jax.tree.map(lambda a, b: np.array_equal(a, b), straight, resumed))
    for step in (1, 2, 3, 4):
        for key in ("rlp/info_gain", "rlp/s_ema", "rlp/ema_drift", "rlp/flops"):
            assert straight_metrics[step][key] == resumed_metrics[step][key], (step, key)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda s: s.objective.__setattr__("group_size", 1),
            r"stages\.rlp\.objective\.group_size: must be >= 2",
        ),
        (
            lambda s: s.objective.__setattr__("max_thought_tokens", 21),
            r"stages\.rlp\.train\.seq_len: 24 leaves 2 tokens",
        ),
        (
            lambda s: s.objective.__setattr__("num_minibatches", 3),
            r"stages\.rlp\.objective\.num_minibatches: 8 thought rows",
        ),
    ],
)
def test_rlp_config_errors_name_the_field(digits, edit, message):
    files, _, tokenizer_path = digits
    config = job_config()
    config.tokenizer.path = tokenizer_path
    config.stages.rlp = rlp_stage(files)
    edit(config.stages.rlp)
    with pytest.raises(JobConfigError, match=message):
        validate_job(config, num_devices=8)


def test_a_close_marker_of_several_tokens_is_refused_before_training(digits, tmp_path):
    files, _, tokenizer_path = digits
    config = job_config()
    config.tokenizer.path = tokenizer_path
    config.stages.rlp = rlp_stage(files, thought_close="END")
    with pytest.raises(JobConfigError, match=r"stages\.rlp\.objective\.thought_close: 'END' is 3"):
        run_job(config, tmp_path)
    assert not (tmp_path / "rlp" / "checkpoints").exists()
