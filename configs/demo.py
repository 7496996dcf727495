"""The embedded default job: a tiny end-to-end run on a laptop CPU in a few minutes.

1. train a 2k-piece sentencepiece tokenizer on GSM8K training text (shipped in the package),
2. pretrain a ~1.5M-parameter Qwen3-style decoder on that text,
3. SFT it on GSM8K question/answer pairs (ChatML, loss on answers only),
4. write orbax checkpoints, TensorBoard logs and a Hugging Face export per stage.

  python -m reasonrl.main --config=configs/demo.py --workdir=runs/demo
"""

from reasonrl.paths import asset
from reasonrl.train.config import job_config, stage_config

DEMO_MODEL = dict(
    hidden_size=128,
    intermediate_size=384,
    num_layers=4,
    num_heads=4,
    num_kv_heads=2,
    head_dim=32,
    max_position_embeddings=512,
)


def get_config():
    config = job_config()
    config.tokenizer.train_on = str(asset("corpus", "gsm8k_train.txt"))
    config.tokenizer.vocab_size = 2048

    pretrain = stage_config()
    pretrain.model.preset = "tiny-qwen3"
    pretrain.model.overrides = DEMO_MODEL
    pretrain.data = dict(
        source=dict(type="text", path=str(asset("corpus", "gsm8k_train.txt")), split="blank_line"),
        task=dict(type="pretrain"),
        packing=dict(type="concat_then_split"),
    )
    pretrain.objective.name = "next_token"
    pretrain.optimizer.update(learning_rate=3e-3, warmup_steps=30, weight_decay=0.01)
    pretrain.train.update(steps=300, batch_size=16, seq_len=256, log_every=25, checkpoint_every=100)

    sft = stage_config()
    sft.model.init_from = "pretrain"
    sft.data = dict(
        source=dict(type="jsonl", path=str(asset("corpus", "gsm8k_train.jsonl"))),
        task=dict(
            type="sft", chat_template="chatml", prompt_field="question", response_field="answer"
        ),
        packing=dict(type="first_fit", num_bins=16),
    )
    sft.eval_data = dict(
        source=dict(type="jsonl", path=str(asset("corpus", "gsm8k_test.jsonl"))),
        task=dict(
            type="sft", chat_template="chatml", prompt_field="question", response_field="answer"
        ),
        packing=dict(type="first_fit", num_bins=16),
        shuffle=False,
    )
    sft.objective.name = "sft"
    sft.optimizer.update(learning_rate=1e-3, warmup_steps=10, weight_decay=0.0)
    sft.train.update(
        steps=150,
        batch_size=16,
        seq_len=256,
        log_every=25,
        eval_every=50,
        eval_batches=4,
        checkpoint_every=50,
    )

    config.stages.pretrain = pretrain
    config.stages.sft = sft
    return config
