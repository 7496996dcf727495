"""The spectrum-tuning evals' metrics, from the official code (github.com/tsor13/spectrum), in
NumPy on host values.

Steerability (`icl_classes/eval_icl.py`): every in-context output j of a sequence is scored
under the model given everything before it: `loss` = summed NLL of its tokens (content and
end-of-turn), `acc` = the share of its tokens that are the argmax, `all_acc` = all of them are,
`first_acc` = its first token is. Headline: the means over outputs with j >= 1 (at least one
demonstration in context), `loss_geq_1` and `all_acc_geq_1`. Calibration: `ece` over the same
outputs' tokens (`expected_calibration_error`).

Coverage (`diverse_valid/eval_diverse_valid.py`): of n samples, `percent_valid` = share in the
valid set, `unique_gens_pct` = distinct valid / valid, `yield` = distinct valid.

Distributional alignment (`distributional_alignment/eval_distributional.py`): the probability
of every candidate output, `coverage` = their sum, then renormalised over the candidates and
compared with the target distribution by the Jensen-Shannon divergence (natural log) after
adding eps = 1e-6 to both and renormalising (`js_divergence`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

CALIBRATION_THRESHOLD = 0.01  # token probabilities below this are left out of the ECE
CALIBRATION_BINS = 10
JS_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class OutputScore:
    """One in-context output's scores.

    Attributes:
      index: j, the output's place in its sequence (0 = first).
      loss: summed NLL of its tokens.
      acc: share of its tokens that are the argmax.
      all_acc: 1.0 when every token is the argmax, else 0.0.
      first_acc: 1.0 when its first token is the argmax.
      correct_logprobs: float [n] log p of each of its tokens.
      incorrect_logprobs: float [m] log p of every other token above the calibration
        threshold at its positions.
    """

    index: int
    loss: float
    acc: float
    all_acc: float
    first_acc: float
    correct_logprobs: np.ndarray
    incorrect_logprobs: np.ndarray


def output_score(
    index: int, target_logprobs, argmax_match, top_logprobs, top_is_target
) -> OutputScore:
    """Scores of one output from its n tokens' statistics.

    Args:
      target_logprobs: float [n] log p(token).
      argmax_match: bool [n] the token is the argmax.
      top_logprobs: float [n, K] the K largest log-probabilities at each position (K large
        enough to hold every token above the calibration threshold: K >= 1 / threshold).
      top_is_target: bool [n, K] which of them is the token itself.
    """
    target_logprobs = np.asarray(target_logprobs, np.float64)
    argmax_match = np.asarray(argmax_match, bool)
    top_logprobs = np.asarray(top_logprobs, np.float64)
    others = top_logprobs[~np.asarray(top_is_target, bool)]
    return OutputScore(
        index=index,
        loss=float(-target_logprobs.sum()),
        acc=float(argmax_match.mean()),
        all_acc=float(argmax_match.all()),
        first_acc=float(argmax_match[0]),
        correct_logprobs=target_logprobs,
        incorrect_logprobs=others[others > np.log(CALIBRATION_THRESHOLD)],
    )


def expected_calibration_error(
    correct_logprobs,
    incorrect_logprobs,
    *,
    threshold: float = CALIBRATION_THRESHOLD,
    num_bins: int = CALIBRATION_BINS,
) -> float:
    """Token-level ECE as the official `get_ece_stats`: pool the log-probabilities of the true
    tokens and of the other tokens, keep those above log(threshold), cut them into `num_bins`
    equal-count bins (percentiles), and average over bins |mean probability - share of the
    bin that are true tokens|. NaN when nothing is above the threshold."""
    log_threshold = np.log(threshold)
    correct = np.asarray(correct_logprobs, np.float64)
    incorrect = np.asarray(incorrect_logprobs, np.float64)
    pooled = np.concatenate(
        [correct[correct > log_threshold], incorrect[incorrect > log_threshold]]
    )
    if pooled.size == 0:
        return float("nan")
    bins = min(num_bins, pooled.size)
    edges = np.percentile(pooled, np.linspace(0, 100, bins + 1))
    gaps = []
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (pooled >= low) & (pooled <= high)
        if in_bin.any():
            true_in_bin = np.sum((correct >= low) & (correct <= high))
            gaps.append(abs(np.mean(np.exp(pooled[in_bin])) - true_in_bin / in_bin.sum()))
    return float(np.mean(gaps))


def steerability(scores: Sequence[OutputScore]) -> dict[str, float]:
    """Means over all outputs and over outputs with index >= 1 (the headline), and the ECE of
    the latter's tokens."""
    summary: dict[str, float] = {}
    later = [s for s in scores if s.index >= 1]
    for suffix, group in (("", scores), ("_geq_1", later)):
        for name in ("loss", "acc", "all_acc", "first_acc"):
            values = [getattr(s, name) for s in group]
            summary[f"{name}{suffix}"] = float(np.mean(values)) if values else float("nan")
    summary["num_outputs_geq_1"] = float(len(later))
    summary["ece"] = expected_calibration_error(
        np.concatenate([s.correct_logprobs for s in later]) if later else np.zeros(0),
        np.concatenate([s.incorrect_logprobs for s in later]) if later else np.zeros(0),
    )
    return summary


def js_divergence(target_probs, model_probs, eps: float = JS_EPS) -> float:
    """Jensen-Shannon divergence (natural log) after adding eps to both distributions and
    renormalising them."""
    p = np.asarray(target_probs, np.float64) + eps
    q = np.asarray(model_probs, np.float64) + eps
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    return float(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)))


def distributional_alignment(candidate_logprobs, target_probs) -> dict[str, float]:
    """`coverage` (the model's probability mass on the candidates) and `js_divergence` of the
    renormalised candidate probabilities to the target distribution.

    Args:
      candidate_logprobs: float [C] log p(candidate | prompt) of each whole candidate output.
      target_probs: float [C] the true distribution over the candidates.
    """
    logprobs = np.asarray(candidate_logprobs, np.float64)
    probs = np.exp(logprobs)
    # Renormalising in log space keeps candidates that all have tiny probabilities finite.
    normalised = np.exp(logprobs - np.logaddexp.reduce(logprobs))
    return {
        "coverage": float(probs.sum()),
        "js_divergence": js_divergence(target_probs, normalised),
    }


def sample_coverage(samples: Sequence[str], valid: Sequence[str]) -> dict[str, float]:
    """`percent_valid`, `unique_gens_pct` and `yield` of generated outputs against the set of
    valid ones (outputs are compared after stripping surrounding whitespace)."""
    valid_set = {v.strip() for v in valid}
    kept = [s.strip() for s in samples if s.strip() in valid_set]
    unique = len(set(kept))
    return {
        "percent_valid": len(kept) / len(samples) if samples else float("nan"),
        "unique_gens_pct": unique / len(kept) if kept else 0.0,
        "yield": float(unique),
    }
