"""A job config for subprocess tests: `--config=tests/train/tiny_job.py:CORPUS,TOKENIZER[,eval]`.

With `eval`, the stage also evaluates on its own data every 3 steps (2 batches)."""

from reasonrl.train import job_config
from tests.train.stages import tiny_stage


def get_config(arg: str):
    corpus, tokenizer, *options = arg.split(",")
    config = job_config()
    config.tokenizer.path = tokenizer
    config.stages.pretrain = tiny_stage(corpus)
    if "eval" in options:
        stage = config.stages.pretrain
        stage.eval_data = stage.data.to_dict()
        stage.train.update(eval_every=3, eval_batches=2)
    return config
