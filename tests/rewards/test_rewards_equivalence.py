"""Equivalence tests: every normalisation rule, with positive and negative cases."""

import pytest

from reasonrl.rewards import Status, check_equivalence, check_equivalence_batch, is_equivalent

# (prediction, gold, expected). Grouped by rule; every group has cases in both directions.
CASES = [
    # numbers, fractions vs decimals, \dfrac / \tfrac
    ("0.5", r"\frac{1}{2}", True),
    ("0.5", r"\frac{1}{3}", False),
    (r"\dfrac{1}{2}", "0.5", True),
    (r"\tfrac{3}{4}", "0.75", True),
    (r"\tfrac{3}{4}", "0.7", False),
    ("1/2", r"\frac12", True),
    ("0.3333333", r"\frac{1}{3}", True),
    ("0.33", r"\frac{1}{3}", False),
    ("5", "5.0", True),
    ("5", "5.01", False),
    ("-3", "3", False),
    (r"2\sqrt{2}", r"\sqrt{8}", True),
    (r"2\sqrt{3}", r"\sqrt{8}", False),
    # percent: X% matches X and X/100
    (r"50\%", "50", True),
    (r"50\%", "0.5", True),
    ("50%", "50", True),
    ("50 percent", "50", True),
    (r"50\%", "5", False),
    ("50", "0.5", False),
    # degrees
    (r"30^\circ", "30", True),
    (r"30^{\circ}", "30", True),
    ("30°", "30", True),
    ("30 degrees", "30", True),
    (r"\frac{270}{7}", r"\frac{270}7\text{ degrees}", True),
    (r"31^\circ", "30", False),
    # units text and currency
    (r"5\text{ cm}", "5", True),
    ("5 dollars", "5", True),
    (r"\$5", "5", True),
    (r"5.4", r"5.4 \text{ cents}", True),
    (r"864", r"864 \mbox{ inches}^2", True),
    (r"12\text{ square units}", "12", True),
    ("6 dollars", "5", False),
    (r"15\text{ cm}^2", "16", False),
    # thousands separators vs tuples and lists
    ("1,000", "1000", True),
    (r"1\,000", "1000", True),
    ("1{,}000", "1000", True),
    (r"10,\!000", "10000", True),
    (r"\$1,000", "1000", True),
    ("1,000,000", "1000000", True),
    ("1,001", "1000", False),
    ("1,5", "15", False),
    ("(1,2)", "12", False),
    # intervals
    ("[1,2)", "[1,2]", False),
    ("[1,2)", "[1, 2)", True),
    (r"(-\infty, 3]", r"(-\infty,3]", True),
    (r"(-\infty, 3)", r"(-\infty,3]", False),
    (r"x \in [1,2)", "[1,2)", True),
    # tuples and sets
    ("(1,2)", r"\left(1, 2\right)", True),
    ("(2,1)", r"\left(1, 2\right)", False),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\pi/2)", True),
    (r"\left( 3, \frac{\pi}{3} \right)", r"(3,\pi/2)", False),
    (r"\{1,2\}", r"\{2,1\}", True),
    ("3, 4", "4, 3", True),
    (r"\{1,3\}", r"\{1,2\}", False),
    ("(1,3,2)", "(1,2,3)", False),
    # matrices
    (
        r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",
        r"\begin{bmatrix}1&2\\3&4\end{bmatrix}",
        True,
    ),
    (
        r"\begin{pmatrix} 0.5 \\ -1 \end{pmatrix}",
        r"\begin{pmatrix} \frac12 \\ -1 \end{pmatrix}",
        True,
    ),
    (
        r"\begin{pmatrix} 1 & 2 \\ 3 & 5 \end{pmatrix}",
        r"\begin{pmatrix}1&2\\3&4\end{pmatrix}",
        False,
    ),
    # x = 3 vs 3
    ("x=3", "3", True),
    ("3", "x = 3", True),
    ("y = 2x+1", "2x+1", True),
    ("x=4", "3", False),
    # multiple-choice letters
    ("B", "(B)", True),
    ("(B)", "B", True),
    (r"\text{(B)}", "B", True),
    ("B", r"\text{(B)}", True),
    (r"\textbf{(C) } 12", r"\text{(C)}", True),
    ("b", "B", True),
    ("B", "C", False),
    ("12", r"\text{(C)}", False),
    ("(B) or (C)", "B", False),
    # \left \right, \!, spaces, delimiters, trailing period, unicode
    (r"\left[ 1, 2 \right]", "[1,2]", True),
    (r"10\!000", "10000", True),
    ("  2 ", "2", True),
    ("$5$", "5", True),
    ("5.", "5", True),
    ("−3", "-3", True),
    ("π", r"\pi", True),
    (r"2 \pi", r"2\pi", True),
    ("3.14", r"\pi", False),
    # algebra and text answers
    ("x^2+2x+1", "(x+1)^2", True),
    ("x^2+1", "(x+1)^2", False),
    ("Evelyn", r"\text{Evelyn}", True),
    ("Navin", r"\text{Evelyn}", False),
]


@pytest.mark.parametrize("prediction, gold, expected", CASES)
def test_is_equivalent(prediction, gold, expected):
    assert is_equivalent(prediction, gold) is expected


def test_batch_matches_single_calls():
    predictions = [case[0] for case in CASES]
    golds = [case[1] for case in CASES]
    verdicts = check_equivalence_batch(predictions, golds, num_workers=2)
    assert [v.equivalent for v in verdicts] == [case[2] for case in CASES]


def test_statuses():
    assert check_equivalence(None, "5").status == Status.NO_ANSWER
    assert check_equivalence("   ", "5").status == Status.NO_ANSWER
    assert check_equivalence("5", "5").status == Status.CORRECT
    assert check_equivalence("6", "5").status == Status.INCORRECT
    assert check_equivalence("9^{9^{9^9}}", "5").status == Status.REJECTED
    assert check_equivalence("1" * 5000, "5").status == Status.REJECTED


def test_integer_gold_is_accepted_and_bad_gold_raises():
    assert is_equivalent("42", 42)
    with pytest.raises(ValueError):
        is_equivalent("1", "  ")
    with pytest.raises(TypeError):
        is_equivalent("1", None)
    with pytest.raises(ValueError):
        check_equivalence_batch(["1", "2"], ["1"])
