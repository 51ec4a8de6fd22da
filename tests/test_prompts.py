"""Every prompt template renders; a user folder overrides file by file; a missing variable is an error."""

from __future__ import annotations

from importlib import resources

import pytest

from orchestrator.errors import ConfigError
from orchestrator.prompting import TEMPLATES, render

VARIABLES = {
    "system": {"tools": True, "native": False, "custom_system": "Be brief."},
    "question": {"question": "What is 2+2?", "lessons": ["Check units."]},
    "plan": {},
    "think": {"first": True, "steps_left": 3, "advice": "recheck step 2", "backtrack": True, "answer_hint": "<n>"},
    "reflect": {"final": True},
    "verify": {"answer": "4", "tools": False},
    "lesson": {"why": "verification failed"},
    "observation": {"observation": "4", "error": False, "steps_left": 5, "native": False},
    "format_error": {"problem": "no reward found", "expected": "End with Reward: X."},
    "judge": {"solution": "Step 1: 2 + 2 = 4.", "answer": "4"},
    "check": {"answer": "4"},
    "verify_code": {},
    "program": {},
    "program_error": {"error": "NameError: name 'x' is not defined"},
}


def test_the_list_names_every_shipped_template():
    shipped = {p.name[:-3] for p in resources.files("orchestrator.prompts").iterdir() if p.name.endswith(".j2")}
    assert shipped == set(TEMPLATES) == set(VARIABLES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders(name):
    text = render(name, **VARIABLES[name])
    assert text.strip()
    assert "{{" not in text and "{%" not in text


def test_rendered_content_uses_the_variables():
    assert "Check units." in render("question", **VARIABLES["question"])
    think = render("think", **VARIABLES["think"])
    assert "3 steps left" in think and "recheck step 2" in think and "different approach" in think
    assert "```python" in render("system", tools=True, native=False, custom_system=None)
    assert "python tool" in render("system", tools=True, native=True, custom_system=None)
    assert "```python" not in render("system", tools=True, native=True, custom_system=None)
    assert "```python" not in render("system", tools=False, native=False, custom_system=None)
    assert "output: 4" not in render("observation", observation="output: 4", error=False, steps_left=2, native=True)


def test_missing_variable_is_a_clear_error():
    with pytest.raises(ConfigError, match="think.j2"):
        render("think", first=True)


def test_user_folder_overrides_one_template_and_keeps_the_rest(tmp_path):
    (tmp_path / "plan.j2").write_text("My own plan prompt.")
    assert render("plan", prompts_dir=str(tmp_path)) == "My own plan prompt."
    assert "Reward" in render("reflect", prompts_dir=str(tmp_path), final=False)


def test_missing_user_folder_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        render("plan", prompts_dir=str(tmp_path / "nope"))
