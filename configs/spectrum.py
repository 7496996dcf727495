"""Spectrum tuning (arXiv 2510.06084) against instruction tuning, at tiny scale on CPU, with the
spectrum evals on held-out tasks, in under ten minutes.

The data is the shipped synthetic suite (`reasonrl/assets/synthetic/spectrum`, made by
`reasonrl.synthetic.spectrum_suite`): tasks whose output distributions are known exactly
(stated categorical distributions, uniform choices from lists, number ranges, individuals with
a favourite, conditional "name a different one", two-field JSON outputs). Held-out tasks ask
for output sets (and number ranges) no training task uses, with their own probabilities.

Stages (a 1000-piece sentencepiece tokenizer on the suite's text first):
  1. pretrain   next-token prediction on "world knowledge" text (which word is in which
                category, counting), no task format: the base model both branches start from;
  2. sft        the instruction-tuned baseline: ordinary SFT on the same 3000 training tasks
                with ONE answer per prompt (the task's most likely output), user / assistant;
  3. spectrum   spectrum tuning from the same start: each training task's description (with
                probability 0.6) and its 8-14 samples in a random order, with the roles
                description / input / output, loss on the outputs only.
Both branches: 300 steps of 16 rows x 256 tokens at LR 2e-3 (a 1M-parameter model; the paper's
3e-6 is for 8-14B models).

Evals (`config.evals`, run after the stages on the 48 held-out tasks, `workdir/evals/<name>/`):
`start` (the pretrained model, spectrum format), `sft` (chat format, as it was trained) and
`spectrum` (spectrum format): steerability (`loss_geq_1`, `all_acc_geq_1`, `ece`), coverage of
100 samples at T = 1 (`percent_valid`, `unique_gens_pct`, `yield`) and distributional alignment
(`js_divergence`, `coverage`). What to expect and the measured numbers: benchmarks/RESULTS.md.

  python -m reasonrl.main --config=configs/spectrum.py --workdir=runs/spectrum
"""

from reasonrl.configs.demo import DEMO_MODEL
from reasonrl.paths import asset
from reasonrl.train.config import job_config, stage_config

MODEL = {**DEMO_MODEL, "max_position_embeddings": 256}  # 1.0M parameters with this vocabulary
SEQ_LEN = 256


def _suite(name: str) -> str:
    return str(asset("synthetic", "spectrum", name))


def _post_training(data: dict, objective: str, steps: int) -> object:
    stage = stage_config()
    stage.model.init_from = "pretrain"
    stage.data = data
    stage.objective.name = objective
    stage.optimizer.update(learning_rate=2e-3, warmup_steps=20, weight_decay=0.01)
    stage.train.update(
        steps=steps, batch_size=16, seq_len=SEQ_LEN, log_every=25, checkpoint_every=steps
    )
    return stage


def get_config():
    config = job_config()
    config.tokenizer.train_on = _suite("tokenizer.txt")
    config.tokenizer.vocab_size = 1000

    pretrain = stage_config()
    pretrain.model.preset = "tiny-qwen3"
    pretrain.model.overrides = MODEL
    pretrain.data = dict(
        source=dict(type="text", path=_suite("pretrain.txt"), split="blank_line"),
        task=dict(type="pretrain"),
        packing=dict(type="concat_then_split"),
    )
    pretrain.objective.name = "next_token"
    pretrain.optimizer.update(learning_rate=3e-3, warmup_steps=20, weight_decay=0.01)
    pretrain.train.update(steps=150, batch_size=16, seq_len=128, log_every=25, checkpoint_every=150)
    config.stages.pretrain = pretrain

    config.stages.sft = _post_training(
        dict(
            source=dict(type="jsonl", path=_suite("sft_train.jsonl")),
            task=dict(type="sft", chat_template="chatml", messages_field="messages"),
            packing=dict(type="first_fit", num_bins=16),
        ),
        objective="sft",
        steps=300,
    )
    config.stages.spectrum = _post_training(
        dict(
            source=dict(type="jsonl", path=_suite("train.jsonl")),
            task=dict(type="spectrum", chat_template="chatml"),
            packing=dict(type="first_fit", num_bins=16),
        ),
        objective="spectrum",
        steps=300,
    )

    for name, stage, eval_format in (
        ("start", "pretrain", "spectrum"),
        ("sft", "sft", "chat"),
        ("spectrum", "spectrum", "spectrum"),
    ):
        config.evals[name] = dict(kind="spectrum", stage=stage, options=dict(format=eval_format))
    return config
