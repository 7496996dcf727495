"""A job config for the bad-input sweep:
`--config=tests/reliability/sweep_job.py:MODE,CORPUS,TOKENIZER,SFT_JSONL`.

A tiny pretrain stage on CORPUS, then an SFT stage (init_from pretrain) on SFT_JSONL. MODE:
  ok            as described
  small_vocab   the pretrain model's vocabulary is smaller than the tokenizer's
  diverge       a learning rate that makes the loss non-finite within a few steps
"""

from reasonrl.train import job_config, stage_config
from tests.train.stages import tiny_stage


def get_config(arg: str):
    mode, corpus, tokenizer, sft_path = arg.split(",")
    config = job_config()
    config.tokenizer.path = tokenizer
    pretrain = tiny_stage(corpus, steps=4, checkpoint_every=2)
    if mode == "small_vocab":
        pretrain.model.vocab_from_tokenizer = False
        pretrain.model.overrides = dict(pretrain.model.overrides.to_dict(), vocab_size=64)
    if mode == "diverge":
        pretrain.optimizer.update(learning_rate=1e12, clip_norm=0.0, warmup_steps=0)
    sft = stage_config()
    sft.model.init_from = "pretrain"
    sft.data = dict(
        source=dict(type="jsonl", path=sft_path),
        task=dict(
            type="sft", chat_template="plain", prompt_field="question", response_field="answer"
        ),
        packing=dict(type="first_fit", num_bins=4),
        read_threads=0,
    )
    sft.train.update(steps=3, batch_size=8, seq_len=64, log_every=1, checkpoint_every=3)
    config.stages.pretrain = pretrain
    config.stages.sft = sft
    return config
