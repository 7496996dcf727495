"""RLP (arXiv 2510.01265) on a Hugging Face base model and a text corpus, with the paper's
hyperparameters (§5, §9, Tab. S.1): G = 16 thoughts of up to 2048 tokens at temperature 0.7,
constant learning rate 1e-6, no KL, τ = 0.999. Set the model and the corpus:

  python -m reasonrl.main --config=configs/rlp_hf.py --workdir=runs/rlp_qwen3 \\
      --config.tokenizer.path=/ckpt/Qwen3-1.7B-Base \\
      --config.stages.rlp.model.hf_checkpoint=/ckpt/Qwen3-1.7B-Base \\
      --config.stages.rlp.data.source.path=/data/corpus.jsonl

The corpus is JSONL with a "text" field (or set data.source to any source, e.g. type="text" with
split="blank_line"). A document row holds train.seq_len − max_thought_tokens − score_tokens −
len(<think>) tokens (2047 here); longer documents are truncated. The paper used 512 contexts
per step on 32 H100s; scale train.batch_size and the mesh to your machine, and use
objective.num_positions > 1 to think at several places per document.
"""

from reasonrl.train.config import job_config, stage_config


def get_config():
    config = job_config()
    config.tokenizer.path = ""  # the base model's directory (tokenizer.json)

    rlp = stage_config()
    rlp.model.hf_checkpoint = ""  # the base model's directory (config.json + safetensors)
    rlp.model.overrides = dict(dtype="bfloat16", remat=True)
    rlp.data = dict(
        source=dict(type="jsonl", path=""),
        task=dict(type="pretrain", text_field="text"),
        packing=dict(type="pad"),
    )
    rlp.objective.update(
        name="rlp",
        group_size=16,
        num_positions=1,
        min_context=64,
        max_thought_tokens=2048,
        temperature=0.7,
        ema_decay=0.999,
        kl_coef=0.0,
    )
    rlp.optimizer.update(learning_rate=1e-6, schedule="constant", warmup_steps=0)
    rlp.train.update(
        steps=1000,
        batch_size=32,
        seq_len=4096,
        grad_accum=16,
        log_every=1,
        checkpoint_every=50,
    )
    config.stages.rlp = rlp
    return config
