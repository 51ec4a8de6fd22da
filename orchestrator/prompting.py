"""The one place where prompt templates are rendered (Jinja2, StrictUndefined).

Templates live in the package's `prompts/` folder; a user folder given with `prompts_dir` overrides them
file by file, so a user can change one prompt without copying the rest.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from orchestrator.errors import ConfigError

TEMPLATES = (
    "system", "question", "plan", "think", "reflect", "verify", "lesson", "observation", "format_error",
    "judge", "check", "verify_code", "program", "program_error",
)


@lru_cache(maxsize=16)
def environment(prompts_dir: str | None = None) -> jinja2.Environment:
    """A Jinja2 environment searching the user's folder first, then the built-in templates."""
    loaders: list[jinja2.BaseLoader] = []
    if prompts_dir is not None:
        if not Path(prompts_dir).is_dir():
            raise ConfigError(f"prompt folder {prompts_dir} does not exist")
        loaders.append(jinja2.FileSystemLoader(prompts_dir))
    loaders.append(jinja2.FileSystemLoader(str(resources.files("orchestrator.prompts"))))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, prompts_dir: str | None = None, **variables: Any) -> str:
    """Render template `name` (without `.j2`) with `variables`; a missing variable is an error."""
    try:
        template = environment(prompts_dir).get_template(f"{name}.j2")
        return template.render(**variables).strip()
    except jinja2.TemplateNotFound as e:
        raise ConfigError(f"prompt template {name}.j2 not found") from e
    except jinja2.UndefinedError as e:
        raise ConfigError(f"prompt template {name}.j2: {e}") from e
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"prompt template {e.filename or name + '.j2'}, line {e.lineno}: {e.message}") from None


def check_folder(prompts_dir: str) -> None:
    """Compile every template of a user's prompt folder, so that a broken one is reported before any call."""
    env = environment(prompts_dir)
    for path in sorted(Path(prompts_dir).glob("*.j2")):
        try:
            env.get_template(path.name)
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"prompt template {path}, line {e.lineno}: {e.message}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"prompt template {path} is not UTF-8 text") from None
