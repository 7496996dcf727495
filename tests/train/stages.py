"""Tiny training stages shared by the engine tests (and tests/train/tiny_job.py)."""

from reasonrl.train import stage_config

TINY_MODEL = dict(
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
    max_position_embeddings=128,
)


def tiny_stage(corpus_path, **train_overrides):
    stage = stage_config()
    stage.model.preset = "tiny-qwen3"
    stage.model.overrides = TINY_MODEL
    stage.data = dict(
        source=dict(type="text", path=str(corpus_path), split="blank_line"),
        task=dict(type="pretrain"),
        packing=dict(type="concat_then_split"),
        read_threads=0,
    )
    stage.optimizer.update(learning_rate=1e-2, warmup_steps=2)
    stage.train.update(
        steps=12,
        batch_size=8,
        seq_len=64,
        log_every=1,
        checkpoint_every=3,
        keep_checkpoints=5,
        export_hf=True,
    )
    stage.train.update(**train_overrides)
    return stage
