"""DAPO (arXiv 2503.14476) on the synthetic addition task: configs/grpo.py with only what the
paper changes.

    python -m reasonrl.main --config=configs/dapo.py --workdir=runs/dapo

  - clip-higher: epsilon_low 0.2, epsilon_high 0.28;
  - token-level loss: every token of the batch weighs the same (loss_aggregation="token_mean");
  - no KL term; the reward is +1 / -1 (rl.wrong_reward = -1);
  - soft overlong punishment on the last rl.overlong_cache_length tokens of the budget;
  - dynamic sampling: groups whose G rewards are all equal carry no signal and are replaced by
    newly sampled prompts (at most rl.max_rollout_rounds rounds per step).
Paper hyperparameters at scale (methods.md §5): LR 1e-6 with 20 warmup steps, 512 prompts x 16
samples, L_max 20,480 = 16,384 + a 4,096 cache.
"""

from reasonrl.paths import recipe

grpo = recipe("grpo")


def get_config():
    config = grpo.get_config()
    rl = config.stages.rl
    rl.objective.update(
        clip_eps_low=0.2, clip_eps_high=0.28, kl_coef=0.0, loss_aggregation="token_mean"
    )
    rl.rl.update(
        wrong_reward=-1.0, overlong_cache_length=2, dynamic_sampling=True, max_rollout_rounds=3
    )
    return config
