"""The next-token baseline of benchmarks/rlp_digit_sums.py: continue the model RLP starts from
(the recipe's midtrain export) with next-token prediction on the RLP stage's text
(`configs/rlp.py`), with the midtrain stage's batch shape and learning rate (constant). The
benchmark sets tokenizer.path, model.hf_checkpoint and train.steps (matched to the RLP stage's
FLOPs)."""

from reasonrl.configs import rlp as recipe
from reasonrl.train.config import job_config


def get_config():
    source = recipe.get_config()
    config = job_config()
    config.tokenizer.train_on = ""
    ntp = source.stages.midtrain.copy_and_resolve_references()
    ntp.model.init_from = ""
    ntp.model.hf_checkpoint = "set by the benchmark"
    ntp.data = dict(source.stages.rlp.data.to_dict(), packing=dict(type="concat_then_split"))
    ntp.optimizer.update(warmup_steps=0, schedule="constant")
    ntp.train.update(checkpoint_every=10_000)
    config.stages.ntp = ntp
    return config
