"""Dr. GRPO (arXiv 2503.20783) on the synthetic addition task: configs/grpo.py with only what
the paper changes.

    python -m reasonrl.main --config=configs/drgrpo.py --workdir=runs/drgrpo

  - advantages R_i - mean(R) within the group, no division by the std (rl.advantage="drgrpo");
  - the loss sums each sequence's tokens and divides by a constant, the generation budget,
    instead of the sequence length (loss_aggregation="seq_mean_token_sum_norm",
    loss_norm_length = rl.max_new_tokens);
  - no KL term (beta = 0: the reference model is never loaded), constant learning rate, T = 1.
Paper recipe at scale (methods.md §5): Qwen2.5-Math-1.5B/7B, Qwen-Math template, 8 samples,
3,000 tokens, LR 1e-6.
"""

from reasonrl.paths import recipe

grpo = recipe("grpo")


def get_config():
    config = grpo.get_config()
    rl = config.stages.rl
    rl.objective.update(
        kl_coef=0.0,
        loss_aggregation="seq_mean_token_sum_norm",
        loss_norm_length=rl.rl.max_new_tokens,
    )
    rl.rl.advantage = "drgrpo"
    return config
