"""RLP (arXiv 2510.01265) at tiny scale on CPU: pretraining, then RLP on plain held-out text,
in under ten minutes.

The text is digit sums (`reasonrl/assets/synthetic/digit_sums`, made by
`reasonrl.synthetic.digit_sums`): a document is ten digits in base 3, "=", and their sum mod 3,
"2110201002=0". Predicting the answer without thinking is a parity-like function of all ten
digits, which this model does not learn in minutes (its answer NLL stays near log 3). A thought
that computes the running sums ("<think>+2011001110</think>") makes the answer a copy of the
thought's last digit; a thought that restates the question ("<think>2110201002</think>") says
nothing about it. The choice between the two is the thought's first token ("+" or a digit).

Stages (the tokenizer first: sentencepiece on the pretraining text, 273 pieces, with the
thinking markers <think> / </think> as single ids):
  1. pretrain    next-token prediction, 2000 steps, on 30k documents of which half carry a
                 thought and half of those compute: the model learns the format and the
                 running sums (greedy thoughts that start with "+" are right);
  2. midtrain    300 more steps on 10k documents of which a tenth carry a thought and 5% of
                 those compute: the model still can compute in a thought but rarely chooses to
                 (about 1 sampled thought in 150 at temperature 0.7). This is the situation
                 RLP's reward is for: a capability the policy does not use;
  3. rlp         100 RLP steps on 10k plain held-out documents (no thoughts, no answers to
                 check): 16 documents per step, G = 8 thoughts each, rewarded by their
                 information gain about the observed next token against the EMA teacher.
                 Positions skip the first 12 tokens (bos and the eleven of "2110201002="), so
                 the position is the answer: the one place where a thought can help (at a
                 question digit a thought cannot know the next random digit; at "=" it only
                 misleads, since in this text thoughts precede answers).

What to look for: `rlp/info_gain` in runs/rlp/rlp/metrics.jsonl (and info_gain.png) rises from
about 0.13 nats to about log 3 + 0.1 ≈ 1.2 within 60 steps as the policy moves its thoughts to
the computing kind; `eval/thought_gain` on the test text rises with it (3 seeds on a 2-vCPU AMD
EPYC: 0.24 ± 0.05 -> 1.19 ± 0.01 over the first and last 20 steps; 7.5 minutes for the job).
The 0.1 is a format effect: after "=" the model gives "<think>" a tenth of its mass, which any
thought frees for the answer (log 1/0.9 ≈ 0.1). benchmarks/rlp_digit_sums.py compares RLP with
next-token training at equal FLOPs, over three seeds (benchmarks/RESULTS.md).

  python -m reasonrl.main --config=configs/rlp.py --workdir=runs/rlp
"""

from reasonrl.configs.demo import DEMO_MODEL
from reasonrl.paths import asset
from reasonrl.train.config import job_config, stage_config

MODEL = {**DEMO_MODEL, "max_position_embeddings": 128}


def _text(name: str) -> dict:
    return dict(type="text", path=str(asset("synthetic", "digit_sums", name)), split="line")


def get_config():
    config = job_config()
    config.tokenizer.train_on = str(asset("synthetic", "digit_sums", "pretrain.txt"))
    config.tokenizer.vocab_size = 273
    config.tokenizer.thinking_markers = True

    pretrain = stage_config()
    pretrain.model.preset = "tiny-qwen3"
    pretrain.model.overrides = MODEL
    pretrain.data = dict(
        source=_text("pretrain.txt"),
        task=dict(type="pretrain"),
        packing=dict(type="concat_then_split"),
    )
    pretrain.objective.name = "next_token"
    pretrain.optimizer.update(learning_rate=3e-3, warmup_steps=30, weight_decay=0.01)
    pretrain.train.update(
        steps=2000, batch_size=32, seq_len=64, log_every=100, checkpoint_every=500
    )

    midtrain = pretrain.copy_and_resolve_references()
    midtrain.model.overrides = {}
    midtrain.model.init_from = "pretrain"
    midtrain.data.source = _text("midtrain.txt")
    midtrain.optimizer.update(learning_rate=1e-3, warmup_steps=10)
    midtrain.train.update(steps=300, checkpoint_every=300)

    rlp = stage_config()
    rlp.model.init_from = "midtrain"
    documents = dict(task=dict(type="pretrain"), packing=dict(type="pad"))
    rlp.data = dict(documents, source=_text("rlp.txt"))
    rlp.eval_data = dict(documents, source=_text("test.txt"), shuffle=False)
    rlp.objective.update(
        name="rlp",
        group_size=8,
        num_positions=1,
        min_context=12,
        max_thought_tokens=12,
        temperature=0.7,
        ema_decay=0.999,
    )
    rlp.optimizer.update(learning_rate=3e-4, schedule="constant", warmup_steps=0)
    rlp.train.update(
        steps=100,
        batch_size=16,
        seq_len=32,
        log_every=10,
        eval_every=25,
        eval_batches=4,
        checkpoint_every=25,
    )

    config.stages.pretrain = pretrain
    config.stages.midtrain = midtrain
    config.stages.rlp = rlp
    return config
