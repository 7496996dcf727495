"""Tests for final-answer extraction (reasonrl.rewards.extraction)."""

import time

import pytest

from reasonrl.rewards import DEFAULT_FALLBACKS, FALLBACKS, extract_answer, find_last_boxed


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"so the answer is $\boxed{5}$.", "5"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\frac{\sqrt{3}}{\sqrt{2}}} done", r"\frac{\sqrt{3}}{\sqrt{2}}"),
        (r"first \boxed{1} then \boxed{2}", "2"),  # the LAST box wins
        (r"\fbox{7}", "7"),
        (r"\boxed{1} and finally \fbox{9}", "9"),
        (r"$\boxed 5$", "5"),
        (r"the answer is \boxed 42.", "42"),
        (r"\boxed5", "5"),
        (r"\boxed { 3 }", "3"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),  # escaped braces do not count
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        ("\\boxed{\\text{(B)}}", "\\text{(B)}"),
    ],
)
def test_boxed_answers(text, expected):
    assert extract_answer(text) == expected
    assert extract_answer(text, fallbacks=False) == expected


def test_longer_command_names_are_not_boxes():
    assert find_last_boxed(r"\fboxsep=3pt \boxed{4} \fboxrule").answer == "4"
    assert extract_answer(r"\boxedanswer{3}", fallbacks=False) is None


@pytest.mark.parametrize(
    "text",
    [
        r"\boxed{\frac{1}{2}",  # truncated generation
        r"\boxed{",
        r"\boxed{}",
        r"\boxed{   }",
        "\\boxed{" + "{" * 1000,
        r"\boxed",
    ],
)
def test_invalid_last_box_gives_no_boxed_answer(text):
    assert extract_answer(text, fallbacks=False) is None


def test_text_inside_an_unclosed_box_is_never_graded():
    # Without the rule, the last-number fallback would pick the 2 inside the broken box.
    assert extract_answer(r"We get 7 so \boxed{\frac{1}{2}") == "7"
    # An earlier valid box is not used either: the broken one was the final word.
    assert extract_answer(r"\boxed{3} hmm no, \boxed{4", fallbacks=False) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The final answer is $\\frac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
        ("Final Answer: The final answer is 12. I hope it is correct.", "12"),
        ("so the final answer is: 17", "17"),
        ("Reasoning...\n**Answer:** $x = 3$\n", "x = 3"),
        ("Answer: 256.", "256"),
        ("work work\n#### 1,450", "1,450"),
        ("There are 3 cats and 14 dogs.", "14"),
        ("It costs -2.5 dollars", "-2.5"),
        ("a total of 1,000,000 people", "1,000,000"),
        ("so it is 3/4", "3/4"),
        ("we get \\frac{5}{6} of it", "\\frac{5}{6}"),
    ],
)
def test_fallbacks(text, expected):
    assert extract_answer(text) == expected
    assert extract_answer(text, fallbacks=False) is None


def test_fallback_order_and_selection():
    text = "Answer: 5\nThe final answer is 6. Later we note 7 things."
    assert DEFAULT_FALLBACKS[0] == "final_answer_is"
    assert extract_answer(text) == "6"
    assert extract_answer(text, fallbacks=("answer_colon",)) == "5"
    assert extract_answer(text, fallbacks=("last_number",)) == "7"
    assert extract_answer(text, fallbacks=("hash_answer",)) is None
    assert extract_answer(r"x \boxed{9} Answer: 5") == "9"  # a box beats every fallback
    assert set(DEFAULT_FALLBACKS) <= set(FALLBACKS)


def test_fallback_configuration_errors():
    with pytest.raises(ValueError, match="unknown fallback"):
        extract_answer("1", fallbacks=("nope",))
    with pytest.raises(TypeError):
        extract_answer("1", fallbacks="last_number")


def test_no_answer_at_all():
    assert extract_answer("I do not know.") is None
    assert extract_answer("") is None


def test_huge_inputs_are_fast():
    texts = [
        "1" * 100_000,
        "{" * 100_000,
        "\\boxed{" * 20_000,
        "final answer is " * 6_000,
        "Answer: " + "x" * 100_000,
        "1,1," * 25_000,
        "\\boxed{" + "a" * 100_000 + "}",
    ]
    start = time.perf_counter()
    for text in texts:
        extract_answer(text)
    assert time.perf_counter() - start < 2.0
