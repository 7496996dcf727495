"""check_job_inputs: every stage's data and vocabulary are checked before the first stage trains,
so a mistake in the last stage is not found hours into the job."""

import json

import pytest

import reasonrl.job  # noqa: F401  (registers every stage loop)
from reasonrl import data as data_lib
from reasonrl.errors import ReasonRLError
from reasonrl.paths import asset
from reasonrl.rl.loop import rl_options
from reasonrl.train import JobConfigError, job_config, stage_config, validate_job
from reasonrl.train.preflight import check_job_inputs
from tests.helpers import HF_TINY_CONFIGS
from tests.train.stages import tiny_stage

CONFIG_FILE = "configs/x.py"
GSM8K_JSONL = str(asset("corpus", "gsm8k_train.jsonl"))


def sft_stage(path=GSM8K_JSONL, **task):
    stage = stage_config()
    stage.model.init_from = "pretrain"
    stage.data = dict(
        source=dict(type="jsonl", path=str(path)),
        task=dict(type="sft", prompt_field="question", response_field="answer", **task),
    )
    stage.objective.name = "sft"
    stage.train.update(steps=4, batch_size=8, seq_len=64)
    return stage


def rl_stage(path=GSM8K_JSONL):
    stage = stage_config()
    stage.model.init_from = "pretrain"
    stage.rl = rl_options()
    stage.rl.update(group_size=2, max_new_tokens=8)
    stage.data = dict(source=dict(type="jsonl", path=str(path)))
    stage.objective.name = "policy_gradient"
    stage.train.update(steps=4, batch_size=8, seq_len=64)
    return stage


@pytest.fixture
def job(tiny_corpus):
    """pretrain (text corpus) -> sft (GSM8K jsonl): a valid two-stage job."""
    corpus, tokenizer = tiny_corpus
    config = job_config()
    config.tokenizer.path = tokenizer
    config.stages.pretrain = tiny_stage(corpus)
    config.stages.sft = sft_stage()
    validate_job(config, num_devices=8)
    return config


@pytest.fixture(scope="module")
def tokenizer(tiny_corpus):
    return data_lib.load_tokenizer(tiny_corpus[1])


def check(job, tokenizer):
    validate_job(job, num_devices=8, config_file=CONFIG_FILE)
    check_job_inputs(job, tokenizer, config_file=CONFIG_FILE)


def test_valid_jobs_pass(job, tokenizer):
    job.stages.sft.eval_data = job.stages.sft.data.to_dict()
    check(job, tokenizer)
    job.stages.rl = rl_stage()
    check(job, tokenizer)
    assert issubclass(JobConfigError, ReasonRLError)


def test_bad_path_of_the_second_stage(job, tokenizer, tmp_path):
    job.stages.sft.data.source.path = str(tmp_path / "missing.jsonl")
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.sft\.data\.source\.path: file not "
        rf"found: '{tmp_path}/missing\.jsonl' \(in "
        rf"configs/x\.py\)$",
    ):
        check_job_inputs(job, tokenizer, config_file=CONFIG_FILE)


def test_missing_field_in_the_second_stage(job, tokenizer):
    job.stages.sft.data.task.response_field = "solution"
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.sft\.data: {GSM8K_JSONL}:1: record "
        r"has no field 'solution' \(it has \['answer', "
        r"'question'\]\); set stages\.sft\.data\.task\."
        r"response_field \(in configs/x\.py\)$",
    ):
        check_job_inputs(job, tokenizer, config_file=CONFIG_FILE)


def test_eval_data_is_checked_too(job, tokenizer, tmp_path):
    bad = tmp_path / "eval.jsonl"
    bad.write_text(json.dumps({"question": "1+1="}) + "\n")
    job.stages.sft.eval_data = dict(
        job.stages.sft.data.to_dict(), source=dict(type="jsonl", path=str(bad))
    )
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.sft\.eval_data: {bad}:1: record has "
        r"no field 'answer'",
    ):
        check_job_inputs(job, tokenizer)


def test_empty_data_file(job, tokenizer, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    job.stages.sft.data.source.path = str(empty)
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.sft\.data\.source\.path: file is empty: "
        rf"'{empty}'",
    ):
        check_job_inputs(job, tokenizer)


def test_fewer_records_than_logical_data_shards(job, tokenizer, tmp_path):
    """One logical data shard per row (data_shards=0) needs a record for each of the 8 rows."""
    job.stages.sft.train.data_shards = 0
    few = tmp_path / "few.jsonl"
    record = {"question": "1+1=", "answer": "2"}
    few.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    job.stages.sft.eval_data = dict(job.stages.sft.data.to_dict(), source=dict(type="jsonl"))
    job.stages.sft.eval_data.source.path = str(few)
    with pytest.raises(
        JobConfigError,
        match=r"^stages\.sft\.train\.data_shards: 8 logical data shards but "
        r"stages\.sft\.eval_data\.source holds only 2 records; set "
        r"stages\.sft\.train\.data_shards to at most 2",
    ):
        check(job, tokenizer)
    job.stages.sft.train.data_shards = 2
    check(job, tokenizer)


def test_malformed_line_of_a_later_stage(job, tokenizer, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        "".join([json.dumps({"question": "1+1=", "answer": "2"}) + "\n"] * 30)
        + '{"question": "1+1=", "answer": \n'
    )
    job.stages.sft.data.source.path = str(broken)
    with pytest.raises(JobConfigError, match=rf"^stages\.sft\.data: {broken}:31: malformed JSON"):
        check_job_inputs(job, tokenizer)


def test_chat_template_tokens_missing_from_the_tokenizer(job, tokenizer):
    job.stages.sft.data.task.chat_template = "llama3"
    bare = _tokenizer_without_chat_tokens(tokenizer)
    with pytest.raises(JobConfigError, match=r"^stages\.sft\.data\.task\.chat_template: "):
        check_job_inputs(job, bare)


def _tokenizer_without_chat_tokens(tokenizer):
    class Bare(type(tokenizer)):
        def token_to_id(self, token):
            return None if token.startswith("<|") else super().token_to_id(token)

    bare = Bare.__new__(Bare)
    bare.__dict__.update(tokenizer.__dict__)
    return bare


def test_rl_stage_prompt_and_answer_fields(job, tokenizer):
    job.stages.rl = rl_stage()
    job.stages.rl.rl.answer_field = "gold"
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.rl\.data: {GSM8K_JSONL}:1: record has "
        r"no field 'gold' .*set stages\.rl\.rl\."
        r"answer_field",
    ):
        check_job_inputs(job, tokenizer)


@pytest.mark.parametrize(
    "vocab_size, note", [(64, ""), (3, r" \(special ids beyond the model's: pad=3\)")]
)  # sentencepiece: pad=3
def test_preset_vocabulary_smaller_than_the_tokenizer(job, tokenizer, vocab_size, note):
    job.stages.pretrain.model.vocab_from_tokenizer = False
    job.stages.pretrain.model.overrides.vocab_size = vocab_size
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.pretrain\.model: the tokenizer has "
        rf"{tokenizer.vocab_size} ids{note} but the model's "
        rf"vocab_size is {vocab_size} \(preset 'tiny-qwen3' "
        r"with its overrides\) \(in configs/x\.py\)$",
    ):
        check_job_inputs(job, tokenizer, config_file=CONFIG_FILE)
    job.stages.pretrain.model.overrides.vocab_size = tokenizer.vocab_size
    check_job_inputs(job, tokenizer)


def _hf_checkpoint_dir(tmp_path, **changes):
    """A checkpoint directory as far as the vocabulary check reads it: config.json."""
    config = dict(HF_TINY_CONFIGS["qwen2"], architectures=["Qwen2ForCausalLM"], **changes)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    return str(tmp_path / "ckpt")


def test_checkpoint_vocabulary_smaller_than_the_tokenizer(job, tokenizer, tmp_path):
    checkpoint = _hf_checkpoint_dir(tmp_path)  # vocab_size 256; the tokenizer has 400 ids
    job.stages.pretrain.model.update(hf_checkpoint=checkpoint, overrides={})
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.pretrain\.model\.hf_checkpoint: the "
        rf"tokenizer has {tokenizer.vocab_size} ids .*but "
        rf"the model's vocab_size is 256 \({checkpoint}/"
        r"config\.json\)",
    ):
        check_job_inputs(job, tokenizer)


def test_unsupported_checkpoint_architecture(job, tokenizer, tmp_path):
    checkpoint = _hf_checkpoint_dir(tmp_path, model_type="gpt2")
    job.stages.pretrain.model.update(hf_checkpoint=checkpoint, overrides={})
    with pytest.raises(
        JobConfigError,
        match=rf"^stages\.pretrain\.model\.hf_checkpoint: "
        rf"{checkpoint}/config\.json: model_type='gpt2'.* "
        r"supported model types: llama",
    ):
        check_job_inputs(job, tokenizer)


def test_a_stage_started_from_another_has_its_vocabulary(job, tokenizer, tmp_path):
    checkpoint = _hf_checkpoint_dir(tmp_path, vocab_size=tokenizer.vocab_size)
    job.stages.pretrain.model.update(hf_checkpoint=checkpoint, overrides={})
    check_job_inputs(job, tokenizer)  # sft (init_from pretrain) inherits the checkpoint's


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_tokenizer_corpus(tiny_corpus, tmp_path, text):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)
    config = job_config()
    config.tokenizer.train_on = str(corpus)
    config.stages.pretrain = tiny_stage(tiny_corpus[0])
    with pytest.raises(
        JobConfigError,
        match=rf"^tokenizer\.train_on: tokenizer training input "
        rf"'{corpus}' is empty",
    ):
        validate_job(config, num_devices=8, config_file=CONFIG_FILE)
