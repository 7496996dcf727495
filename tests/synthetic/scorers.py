"""Scorers the distillation tests name with --select=scorer:tests.synthetic.scorers:<name>."""


def character_count(problem: str, completion: str) -> float:
    """Prefers long completions, by characters (not tokens, unlike --select=longest)."""
    return float(len(completion))


def not_a_number(problem: str, completion: str):
    return "high"
