"""configs/gspo.py: a valid job that is configs/grpo.py with only GSPO's objective options."""

from reasonrl.objectives.policy_gradient import PolicyGradientOptions
from reasonrl.paths import recipe
from reasonrl.train.config import objective_config, validate_job


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_gspo_recipe_is_valid_and_changes_only_the_ratio_and_clip():
    config = recipe("gspo").get_config()
    validate_job(config, 8, "configs/gspo.py")
    options = PolicyGradientOptions.from_config(objective_config(config.stages.rl))
    assert (
        options.importance_ratio,
        options.clip_eps_low,
        options.clip_eps_high,
        options.loss_aggregation,
    ) == ("sequence", 3e-4, 4e-4, "seq_mean_token_mean")
    gspo, grpo = _flat(config.to_dict()), _flat(recipe("grpo").get_config().to_dict())
    changed = {key for key in gspo.keys() | grpo.keys() if gspo.get(key) != grpo.get(key)}
    assert changed == {
        "stages.rl.objective.importance_ratio",
        "stages.rl.objective.clip_eps_low",
        "stages.rl.objective.clip_eps_high",
    }
