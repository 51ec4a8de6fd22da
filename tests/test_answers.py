"""Answer extraction, normalization and equivalence on real-looking (often malformed) model output."""

from __future__ import annotations

import threading

import pytest

from orchestrator.answers import Answer, extract_answer, guess_kind, normalize, same_answer

MATH_OUTPUTS = [
    ("Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\nThe answer is $18.", "18"),
    ("**Answer:** 1,000", "1000"),
    ("So the total is \\boxed{\\frac{3}{4}}", "3/4"),
    ("Thus $\\boxed{\\dfrac{6}{8}}$ cm.", "3/4"),
    ("The final answer is $\\boxed{\\frac{\\sqrt{2}}{2}}$.", "\\frac{\\sqrt{2}}{2}"),
    ("nested: \\boxed{\\frac{1}{\\sqrt{2}}} then \\boxed{{1,2}}", "{1,2}"),
    ("<answer>42</answer>", "42"),
    ("<answer>She makes $18 every day.</answer>", "18"),
    ("<answer>\nx = 7\n", "7"),  # unclosed tag
    ("therefore 18 dollars per day.\nFinal answer: 18 dollars", "18"),
    ("Total = 5 - 3 = 2", "2"),
    ("Solving gives x = -5", "-5"),
    ("Answer: 25%", "25"),
    ("Answer: -2.50", "-2.5"),
    ("Answer: 336^\\circ", "336"),
    ("**Final Answer**\n\n12.0", "12"),
    ("Final Answer: The final answer is $\\boxed{ 70 }$. I hope it is correct.", "70"),
    ("The result is \\boxed 5 indeed", "5"),
    ("Let me compute... 3 + 4 = 7, so 7 apples.\nI am done", "7"),
    ("<think>The answer is 5? no.</think>\nThe answer is 7.", "7"),
    ("**Answer: $1,234.00**", "1234"),
    ("\\[ \\boxed{-\\frac{3}{4}} \\]", "-3/4"),
    ("The answer is 5, since 2 + 3 = 5.", "5"),
    ("The final answer is 18. I hope it is correct.", "18"),
    ("4 + 4 = 8 eggs\n#### 8", "8"),
    ("So, the answer is 18 because 9 * 2 = 18", "18"),
]


@pytest.mark.parametrize(("output", "expected"), MATH_OUTPUTS)
def test_extract_math(output: str, expected: str) -> None:
    found = extract_answer(output, "math")
    assert found is not None and found.kind == "math"
    assert found.normalized == expected


def test_answer_text_is_clean() -> None:
    assert extract_answer("The answer is $18.", "math") == Answer("$18", "18", "math")
    assert extract_answer("\\boxed{\\frac{3}{4}}", "math").text == "\\frac{3}{4}"


@pytest.mark.parametrize("output", ["", "   ", "I don't know.", "Let me think about this problem carefully"])
def test_no_answer_is_none(output: str) -> None:
    assert extract_answer(output, "math") is None


CHOICE_OUTPUTS = [
    ("Answer: (B) 10^-4 eV", "B"),
    ("The correct answer is C.", "C"),
    ("After analysis of all options...\n\n**B**", "B"),
    ("Answer: $\\boxed{D}$", "D"),
    ("\\boxed{\\text{(A)}}", "A"),
    ("answer: b", "B"),
    ("Option (C) looks wrong, so I pick option D", "D"),
    ("<answer>C</answer>", "C"),
    ("The answer is (A)", "A"),
    ("Final answer: **C) 14**", "C"),
    ("A) is tempting but the data say otherwise.\n\nB)", "B"),
]


@pytest.mark.parametrize(("output", "expected"), CHOICE_OUTPUTS)
def test_extract_choice(output: str, expected: str) -> None:
    assert extract_answer(output, "choice") == Answer(expected, expected, "choice")


@pytest.mark.parametrize("output", ["The answer is a tricky one", "I cannot decide between them."])
def test_choice_without_letter_is_none(output: str) -> None:
    assert extract_answer(output, "choice") is None


def test_extract_code_takes_last_python_block() -> None:
    out = "First:\n```\nprint(1)\n```\nThen:\n```python\ndef g(x):\n    return x + 1\n```\n"
    out += "Output:\n```text\n2\n```"
    assert extract_answer(out, "code").text == "def g(x):\n    return x + 1"


def test_extract_code_unclosed_fence_and_bare_def() -> None:
    assert extract_answer("```python\ndef g():\n    pass", "code").text == "def g():\n    pass"
    assert extract_answer("Sure.\ndef f(a):\n    return a\n", "code").text == "def f(a):\n    return a"
    assert extract_answer("no code here at all", "code") is None


def test_code_normalization_ignores_indent_and_trailing_space() -> None:
    assert normalize("    def f():  \n        return 1\n\n", "code") == "def f():\n    return 1"


@pytest.mark.parametrize(
    ("output", "kind", "normalized"),
    [
        ("The answer is 18.", "math", "18"),
        ("Answer: B", "choice", "B"),
        ("```python\nx = 1\n```", "code", "x = 1"),
        ("Paris", "text", "paris"),
        ("The capital is Paris.\nAnswer: Paris.", "text", "paris"),
        ("\\boxed{\\frac{1}{2}}", "math", "1/2"),
        ("lots of words and then 1,024 at the end\nof the second line", "math", "1024"),
    ],
)
def test_extract_auto(output: str, kind: str, normalized: str) -> None:
    found = extract_answer(output)
    assert found is not None and (found.kind, found.normalized) == (kind, normalized)


def test_extract_game24_expression() -> None:
    assert extract_answer("Answer: (10 - 4) × (13 - 9) = 24", "game24").normalized == "(10-4)*(13-9)"
    assert extract_answer("4 + 8 = 12 (left: 6 12)\n6 * (4 + 8) / 3 = 24", "game24").normalized == "6*(4+8)/3"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$18", "18"), ("18 dollars", "18"), ("1,000", "1000"), ("5.0", "5"), ("7.00", "7"), ("2.50", "2.5"),
        ("\\frac{6}{8}", "3/4"), ("-\\frac{3}{4}", "-3/4"), ("\\frac{-3}{4}", "-3/4"),
        ("\\dfrac{10}{5}", "2"),
        ("50\\%", "50"), ("50%", "50"), ("x = 5", "5"), ("1/2 cup", "1/2"), (".5", "0.5"), ("+7", "7"),
        ("$1,234.00", "1234"), ("3 \\text{ cm}^2", "3"), ("-$5", "-5"), ("\\text{12 apples}", "12"),
        ("2x", "2x"), ("x^2 + 1", "x^2+1"), ("\\sqrt{2}", "\\sqrt{2}"),
    ],
)
def test_normalize_math(raw: str, expected: str) -> None:
    assert normalize(raw, "math") == expected


def test_normalize_choice_and_text() -> None:
    assert normalize("(c)", "choice") == "C"
    assert normalize("**B) 10 eV**", "choice") == "B"
    assert normalize("  The Eiffel-Tower! ", "text") == "the eiffel tower"
    # LaTeX wrappers a model puts around a word are not part of it (a program printing "Monday" agrees).
    assert normalize("$\\text{Monday}$", "text") == normalize("\\boxed{\\textbf{Monday}}", "text") == "monday"
    assert normalize("A $5 bill", "text") == "a $5 bill"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("18", "$18.00", True),
        ("1/3", "0.3333333", True),
        ("1/3", "0.33", False),
        ("\\frac{1}{2}", "0.5", True),
        ("1,000", "1000.0", True),
        ("18", "19", False),
        ("x^2+1", "1+x^2", True),
        ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2", True),
        ("2\\sqrt{3}", "\\sqrt{12}", True),
        ("\\sqrt{2}", "\\sqrt{3}", False),
        ("", "", False),
    ],
)
def test_same_answer_math(a: str, b: str, same: bool) -> None:
    pytest.importorskip("math_verify")
    assert same_answer(a, b, "math") is same
    assert same_answer(b, a, "math") is same


def test_same_answer_other_kinds() -> None:
    assert same_answer("b", "(B)", "choice")
    assert not same_answer("A", "B", "choice")
    assert same_answer("Paris!", "paris", "text")
    assert same_answer("def f():\n  return 1", "  def f():\n    return 1  ", "code")


def test_same_answer_from_a_worker_thread() -> None:
    """math-verify times out with signal.alarm (main thread only): a worker thread must still get answers."""
    pytest.importorskip("math_verify")
    results: dict[str, bool] = {}

    def work() -> None:  # an exception here would leave `results` short, and pytest reports it
        results["same"] = same_answer("\\sqrt{8}", "2\\sqrt{2}", "math")
        results["different"] = same_answer("\\sqrt{8}", "3\\sqrt{2}", "math")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    assert results == {"same": True, "different": False}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which is larger?\n(A) 5\n(B) 7", "choice"),
        ("Pick one:\nA) red\nB) blue\nC) green", "choice"),
        ("Which is prime? (A) 4 (B) 7 (C) 9", "choice"),
        ("Write a Python function that reverses a string.", "code"),
        ("def add(a: int, b: int) -> int:\n    \"\"\"Add two numbers.\"\"\"\n", "code"),
        ("Janet has 3 apples and buys 5 more. How many apples does she have?", "math"),
        ("What is the average of five and seven?", "math"),
        ("What is the capital of France?", "text"),
    ],
)
def test_guess_kind(question: str, kind: str) -> None:
    assert guess_kind(question) == kind


@pytest.mark.parametrize(("text", "normalized"), [
    ("4.393934193870000e+08", "439393419.387"),  # reasoning-gym's number_format writes numbers so
    ("The smallest is 1.440818264900000e+07.", "14408182.649"),  # not '07', the exponent's digits
    ("Final answer: 1.5e-3", "0.0015"),
    ("\\boxed{2E5}", "200000"),
    ("\\boxed{6.02 \\times 10^{23}}", "602000000000000000000000"),
])
def test_a_number_in_scientific_notation_is_one_number(text: str, normalized: str) -> None:
    found = extract_answer(text, "math")
    assert found is not None and found.normalized == normalized
    assert same_answer(found.text, normalized, "math")
