"""A job config for subprocess tests: `--config=tests/train/tiny_job.py:CORPUS,TOKENIZER`."""

from reasonrl.train import job_config
from tests.train.stages import tiny_stage


def get_config(arg: str):
    corpus, tokenizer = arg.split(",")
    config = job_config()
    config.tokenizer.path = tokenizer
    config.stages.pretrain = tiny_stage(corpus)
    return config
