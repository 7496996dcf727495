"""GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization", arXiv 2507.18071) on the
synthetic addition task: configs/grpo.py with only what the paper changes.

    python -m reasonrl.main --config=configs/gspo.py --workdir=runs/gspo

  - a sequence-level importance ratio s_i = (π_θ(y_i|x) / π_old(y_i|x))^(1/|y_i|), clipped per
    sequence: a clipped response contributes no gradient at all (importance_ratio="sequence";
    "sequence_token" is the paper's GSPO-token, for per-token advantages);
  - clip range ε_low 3e-4, ε_high 4e-4 (sequence ratios stay very close to 1);
  - the loss averages the sequences' losses, (1/G) Σ_i (loss_aggregation="seq_mean_token_mean",
    already GRPO's).
Everything else is GRPO's: group-normalised advantages, the rollout and update schedule, and the
k3 KL term (the paper writes its objective without one; kl_coef=0 drops it).
Paper recipe at scale (its experiments; formulas in methods.md §5): a cold-start fine-tune of
Qwen3-30B-A3B-Base, each rollout batch split into 4 mini-batches for the updates, ε_low 3e-4 /
ε_high 4e-4; unlike GRPO it needs no Routing Replay to keep the MoE model stable.
"""

from reasonrl.paths import recipe

grpo = recipe("grpo")


def get_config():
    config = grpo.get_config()
    rl = config.stages.rl
    rl.objective.update(
        importance_ratio="sequence",
        clip_eps_low=3e-4,
        clip_eps_high=4e-4,
        loss_aggregation="seq_mean_token_mean",
    )
    return config
