"""Final answers: find them in free-form model output, put them in canonical form, compare them by meaning.

Extraction is lenient because small models ignore the requested format: in order, the last `<answer>` tag,
the last `\\boxed{...}`, the last "Final answer:" / "The answer is" line, then a kind-specific fallback
(a lone choice letter, the last fenced code block, the last number). Math equality is exact normalized
text, else numeric closeness, else math-verify (references: the GSM8K "####" convention, the MATH
`\\boxed` convention, huggingface/Math-Verify).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
import threading
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

KINDS = ("math", "choice", "code", "text", "game24")


@dataclass
class Answer:
    """One extracted final answer."""

    text: str  # the clean final answer as shown to the user
    normalized: str  # canonical form used for voting and equality
    kind: str  # 'math' | 'choice' | 'code' | 'text' | 'game24'


NUM = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+(?!\w|\.\d))?"  # 1.5e+08 is one number
_NUMBER = re.compile(  # number, optional "/ number", optional percent, then the gap and the rest
    rf"^([-+]?(?:{NUM}))(?:\s*/\s*([-+]?(?:{NUM})))?(?:\s*(?:%|percent\b))?(\s*)(.*)$", re.IGNORECASE
)
_LAST_NUMBER = re.compile(rf"(?:(?<![\w)\]])-)?(?:{NUM})(?:/\d+(?:\.\d+)?)?")
_STEP_LABEL = re.compile(r"(?im)^[\s*#>-]*(?:(?:step|part|case)\s*\d+\s*[:.)-]?|\d+[.)](?=\s))")
_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE = re.compile(
    r"(?:final\s+answer|\banswer)\s*[:：]\s*(.*)$"
    r"|\b(?:final|correct|the)\s+(?:answer|option|choice)\s+(?:is|would\s+be|should\s+be)\s*[:：]?\s*(.*)$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|$)", re.DOTALL)
_LETTER = re.compile(r"^(?:(?:option|choice|letter)\s*)?[\(\[]?([A-J])[\)\]]?(?=[\s.):,;]|$)")
_MATH_WORDS = re.compile(
    r"\b(?:sum|product|how\s+many|how\s+much|calculate|compute|solve|equation|integer|probability|area|"
    r"volume|percent|ratio|remainder|divisible|prime|digits?|evaluate|simplify|find\s+the\s+value|average|"
    r"total|twice|times|half|how\s+(?:long|old|far|fast))\b",
    re.IGNORECASE,
)
_CODE_ASK = re.compile(
    r"\b(?:write|implement|complete|code|create|fix)\b.{0,40}\b(?:function|program|script|class|method)\b",
    re.IGNORECASE | re.DOTALL,
)
_EXPRESSION = re.compile(r"[\w\s^*/+().=-]*\d[\w\s^*/+().=-]*")
_MATH_FUNCS = {"sin", "cos", "tan", "log", "exp", "sqrt", "frac", "mod", "and", "pmod"}


def guess_kind(question: str) -> str:
    """'choice' for listed options, 'code' for programming requests, 'math' for numbers, else 'text'."""
    q = question or ""
    line_opts = {m.upper() for m in re.findall(r"(?m)^\s*[\(\[]?([A-Ja-j])[\)\].:]\s+\S", q)}
    inline_opts = set(re.findall(r"(?:^|\s)\(?([A-J])\)\s*\S", q))
    if {"A", "B"} <= line_opts or {"A", "B"} <= inline_opts:
        return "choice"
    if _CODE_ASK.search(q) or re.search(r"(?m)^\s*def \w+\(.*\)\s*(?:->.*)?:", q):
        return "code"
    if re.search(r"\d", q) or _MATH_WORDS.search(q):
        return "math"
    return "text"


def extract_answer(output: str, kind: str = "auto", strict: bool = False) -> Answer | None:
    """The final answer in `output`, or None when there is none. `kind` 'auto' infers it from the output.
    `strict`: only an answer the text states (a tag, `\\boxed`, an answer line), never the last number or line:
    for text that was cut off or stopped mid-chain, where the last number is a step's, not an answer."""
    if not output or not output.strip():
        return None
    if strict and kind in ("math", "text", "auto"):
        span = _tag(output) or _boxed(output) or _answer_line(output)
        if span is None or "```" in span:
            return None
        output = f"Final answer: {span}"
    if "</think>" in output:  # reasoning models: the answer follows the thinking
        found = _extract(output.rsplit("</think>", 1)[1], kind)
        if found is not None:
            return found
    return _extract(output, kind)


def _extract(output: str, kind: str) -> Answer | None:
    if kind == "code":
        code = _code_span(output)
        return Answer(code, normalize(code, "code"), "code") if code else None
    if kind == "choice":
        letter = _choice_span(output)
        return Answer(letter, letter, "choice") if letter else None
    span = _tag(output) or _boxed(output) or _answer_line(output)
    if kind == "auto":
        return _auto(output, span)
    if kind in ("math", "game24"):
        if span is not None and "```" not in span:
            span = _math_value(span) if kind == "math" else span
        elif kind == "math":
            lines = [ln for ln in output.splitlines() if ln.strip()]
            if lines and _STEP_LABEL.match(lines[-1]) and not _LAST_NUMBER.search(_STEP_LABEL.sub(" ", lines[-1])):
                return None  # it ends on a step that has not got to a result yet: nothing was proposed
            numbers = _LAST_NUMBER.findall(_STEP_LABEL.sub(" ", output))  # "Step 3:" is a label, not a result
            span = numbers[-1] if numbers else None
        else:
            lines = [ln for ln in output.splitlines() if re.search(r"\d\s*[-+*/×÷]", ln)]
            span = lines[-1] if lines else None
    elif span is None:  # text: the last non-empty line
        lines = [ln for ln in output.splitlines() if ln.strip()]
        span = lines[-1] if lines else None
    span = _clean(span) if span else ""
    return Answer(span, normalize(span, kind), kind) if span else None


def _auto(output: str, span: str | None) -> Answer | None:
    if span is None:
        if _FENCE.search(output):
            return _extract(output, "code")
        stripped = output.strip()
        if "\n" not in stripped and len(stripped) < 80:
            span = stripped
        elif _LAST_NUMBER.search(output):
            return _extract(output, "math")
        else:
            return _extract(output, "text")
    span = _clean(span)
    if _choice_letter(span, strict=True):
        return _extract(output, "choice")
    if "```" in span:
        return _extract(span, "code")
    value = _math_value(span)
    if _is_number(normalize(value, "math")) or "\\" in value or _EXPRESSION.fullmatch(value):
        return Answer(_clean(value), normalize(value, "math"), "math")
    return Answer(span, normalize(span, "text"), "text") if span else None


def _tag(text: str) -> str | None:
    found = _TAG.findall(text)
    if found:
        return found[-1].strip() or None
    if "<answer>" in text.lower():  # an unclosed tag at the end
        return text[text.lower().rindex("<answer>") + 8:].strip() or None
    return None


def _boxed(text: str) -> str | None:
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":  # `\boxed 5`
        m = re.match(r"[^\s$]+", text[i:])
        return m.group(0) if m else None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j].strip() or None
    return text[i + 1:].strip() or None  # unbalanced: take the rest


def _answer_line(text: str) -> str | None:
    lines = [re.sub(r"\*\*|__|^#+", "", ln).strip() for ln in text.splitlines()]
    for n in range(len(lines) - 1, -1, -1):
        gsm8k = re.match(r"\s*####\s*(\S.*)", text.splitlines()[n])  # the GSM8K training format
        if gsm8k:
            return gsm8k.group(1).strip()
        matches = list(_ANSWER_LINE.finditer(lines[n]))
        m = matches[-1] if matches else None
        if m is None:
            continue
        value = (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()
        if not value:  # "**Final Answer**:" with the answer on the next line
            value = next((ln for ln in lines[n + 1:] if ln), "")
        if value:
            return value
    return None


def _clean(span: str) -> str:
    s = span.strip().strip("*_`").strip()
    s = re.sub(r"^\$+(.*?)\$+$", r"\1", s, flags=re.DOTALL)
    s = re.sub(r"^\\[(\[](.*?)\\[)\]]$", r"\1", s, flags=re.DOTALL).strip()
    return s[:-1].rstrip() if s.endswith(".") and not s.endswith("..") else s


def _math_value(span: str) -> str:
    """The math answer inside a span: the span itself, or its last number when the span is prose."""
    inner = _boxed(span) or span
    head = re.split(r"[,;]\s|\.\s|\s(?:because|since|as|which|so|from)\b", inner, maxsplit=1)[0]
    if _is_number(normalize(head, "math")):  # "18. I hope it is correct", "5, since 2 + 3 = 5"
        return head
    words = [w for w in re.findall(r"(?<!\\)\b[A-Za-z]{3,}\b", inner) if w.lower() not in _MATH_FUNCS]
    numbers = _LAST_NUMBER.findall(inner)
    return numbers[-1] if len(words) >= 2 and numbers else inner


def _choice_letter(span: str, strict: bool = False) -> str | None:
    s = re.sub(r"\\text\w*\{([^{}]*)\}", r"\1", span).strip().strip("*_`$ ").strip()
    m = _LETTER.match(s)
    if m and (not strict or re.fullmatch(r"[\(\[]?[A-J][\)\]]?[.:]?", s)):
        return m.group(1)
    lone = re.fullmatch(r"[\(\[]?([a-j])[\)\]]?\.?", s)  # a lowercase letter only when it is alone
    return lone.group(1).upper() if lone and not strict else None


def _choice_span(text: str) -> str | None:
    for span in (_tag(text), _boxed(text), _answer_line(text)):
        letter = _choice_letter(span) if span else None
        if letter:
            return letter
    for line in reversed(text.splitlines()):
        letter = _choice_letter(line, strict=True)
        if letter:
            return letter
    found = re.findall(r"\b(?:option|choice)\s*\(?([A-J])\)?(?![\w])|\(([A-J])\)", text)
    return (found[-1][0] or found[-1][1]) if found else None


def _code_span(text: str) -> str | None:
    source = _tag(text) or text
    blocks = _FENCE.findall(source)
    python = [code for lang, code in blocks if lang.lower() in ("", "python", "py", "python3")]
    if python or blocks:
        return (python or [code for _, code in blocks])[-1].strip("\n") or None
    m = re.search(r"(?m)^(?:def |class |import |from \S+ import )", source)
    return source[m.start():].strip("\n") if m else None


def normalize(text: str, kind: str) -> str:
    """The canonical form of an answer of `kind`, used for voting and equality."""
    if kind == "choice":
        return _choice_letter(text) or text.strip()
    if kind == "code":
        lines = [ln.rstrip() for ln in textwrap.dedent(text.replace("\t", "    ")).splitlines()]
        return "\n".join(lines).strip("\n")
    if kind == "text":  # LaTeX wrappers go first: "$\\text{Monday}$" and "\\boxed{Monday}" are "monday"
        text = _clean(_boxed(text) or text)
        text = re.sub(r"\\(?:text\w*|mathrm|mathbf|mbox)\{([^{}]*)\}", r"\1", text)
        kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.casefold())
        return " ".join(kept.split())
    if kind == "game24":
        s = _clean(_boxed(text) or text).replace("×", "*").replace("÷", "/").replace("−", "-")
        s = s.replace("\\times", "*").replace("\\div", "/").replace("\\cdot", "*")
        sides = [side for side in re.sub(r"\s+", "", s).split("=") if side not in ("", "24")]
        return sides[0] if sides else ""
    return _normalize_math(text)


def _normalize_math(text: str) -> str:
    s = _clean(_boxed(text) or text)
    s = re.sub(r"\\(?:text|textbf|textit|mathrm|mbox|operatorname)\s*\{([^{}]*)\}", r" \1 ", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\%", "%").replace("\\$", "$")
    s = re.sub(r"\^\s*\{?\\circ\}?|°|\\left|\\right|\\displaystyle|\\[,;:! ]", "", s)
    s = re.sub(r"\\frac\s*\{\s*([-+]?\d+)\s*\}\s*\{\s*([-+]?\d+)\s*\}", r"\1/\2", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\1/\2", s)
    s = re.sub(r"^([-+]?\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|×)\s*10\s*\^\s*\{?\s*([-+]?\d+)\s*\}?$", r"\1e\2", s.strip())
    s = re.sub(r"^[A-Za-z]\w*\s*=\s*(?=[^=]+$)", "", s.strip())  # "x = 5" -> "5"
    s = re.sub(r"^(-?)\s*(?:\$|€|£|usd\b|rs\.?)\s*", r"\1", s.strip(), flags=re.IGNORECASE).strip()
    m = _NUMBER.match(s)
    if m and _only_units(m.group(3), m.group(4)):
        value = _as_fraction(m.group(1), m.group(2))
        if value is not None:
            return _format(value, exact_decimal=m.group(1) if m.group(2) is None else None)
    return re.sub(r"\s+", "", s).rstrip(".")


def _only_units(gap: str, rest: str) -> bool:
    """Whether what follows a number is nothing, or unit words after a space ('18 dollars', '5 cm^2')."""
    if not rest:
        return True
    return bool(gap) and rest[0].isalpha() and not re.search(r"[\d=+*]", re.sub(r"\^\{?\d+\}?", "", rest))


def _as_fraction(num: str, den: str | None) -> Fraction | None:
    top = Fraction(num.replace(",", ""))
    if den is None:
        return top
    bottom = Fraction(den.replace(",", ""))
    return top / bottom if bottom else None


def _format(value: Fraction, exact_decimal: str | None) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    if exact_decimal is not None:  # decimals stay decimals: '2.50' -> '2.5'
        return format(Decimal(exact_decimal.replace(",", "")).normalize(), "f").lstrip("+")
    return f"{value.numerator}/{value.denominator}"


def _is_number(normalized: str) -> bool:
    return re.fullmatch(r"-?\d+(?:\.\d+)?(?:/\d+)?", normalized) is not None


def same_answer(a: str, b: str, kind: str) -> bool:
    """Whether two answers mean the same: normalized equality, numeric closeness, then math-verify."""
    na, nb = normalize(a, kind), normalize(b, kind)
    if na == nb:
        return bool(na)
    if kind != "math":
        return False
    if _is_number(na) and _is_number(nb):
        x, y = Fraction(na), Fraction(nb)
        return abs(x - y) <= Fraction(1, 10**6) * max(abs(x), abs(y))
    return _math_verify(*sorted((_clean(_boxed(a) or a), _clean(_boxed(b) or b))))


def group(normalized: str | None, seen: list[str], kind: str) -> str | None:
    """The label of an answer for voting: the first answer in `seen` that means the same (`same_answer`),
    else the answer itself, added to `seen`; None for no answer."""
    if normalized is None or normalized == "":
        return None
    for label in seen:
        if label == normalized or same_answer(label, normalized, kind):
            return label
    seen.append(normalized)
    return normalized


_VERIFY_SCRIPT = """import json, sys
from math_verify import parse, verify
a, b = (parse("$" + s + "$") for s in json.load(sys.stdin))
print(json.dumps(bool(verify(a, b) or verify(b, a))))
"""


@lru_cache(maxsize=4096)
def _math_verify(a: str, b: str) -> bool:
    # math-verify times out with signal.alarm, which works in the main thread only: elsewhere, use a child
    if not a or not b or max(len(a), len(b)) > 1000 or importlib.util.find_spec("math_verify") is None:
        return False
    if threading.current_thread() is threading.main_thread():
        from math_verify import parse, verify

        pa, pb = parse(f"${a}$"), parse(f"${b}$")
        return bool(verify(pa, pb) or verify(pb, pa))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _VERIFY_SCRIPT], input=json.dumps([a, b]),
            capture_output=True, text=True, timeout=60, check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and proc.stdout.strip() == "true"
