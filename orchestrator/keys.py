"""API keys: looked up as explicit argument > stored key file (0600 JSON) > environment variable.

The key file is `keys.json` in the config directory (`platformdirs.user_config_dir("reason")`, or
`$REASON_CONFIG_DIR`). `redact` scrubs every known secret (stored keys, provider environment variables, keys
handed out or registered with `add_secret`, the guard key of `reason serve`), and anything shaped like a key,
from text; it is the one function every writer of text calls (model output, trajectories, server responses
and logs, CLI errors). `StreamRedactor` does the same for a stream of tokens.
Two keys belong to no provider: `reason serve`'s guard key (`REASON_SERVE_API_KEY`), which clients send to it and
which it never sends anywhere, and the key sent to models named by URL (`REASON_HTTP_API_KEY`).
`REASON_SERVER_API_KEY` was both once; it still works as either, with a warning.
Reference: simonw/llm `cli.py` (`get_key`, `keys set`).
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from orchestrator.errors import ConfigError, MissingKey

ENV_VARS: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "e2b": "E2B_API_KEY",
    "groq": "GROQ_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "fireworks_ai": "FIREWORKS_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "huggingface": "HF_TOKEN",
}
KEY_PATTERNS = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|e2b_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{20,}"
    r"|gsk_[A-Za-z0-9]{20,}|AIza[A-Za-z0-9_\-]{30,}|(?i:bearer)\s+[A-Za-z0-9_\-.]{8,}"
)
SERVE_KEY_ENV = "REASON_SERVE_API_KEY"  # the key clients must send to `reason serve`
HTTP_KEY_ENV = "REASON_HTTP_API_KEY"  # the key sent to OpenAI-compatible servers named by URL
LEGACY_KEY_ENV = "REASON_SERVER_API_KEY"  # deprecated: was both of the above
OTHER_SECRET_ENVS = (SERVE_KEY_ENV, HTTP_KEY_ENV, LEGACY_KEY_ENV)
REDACTED = "[REDACTED]"
MIN_SECRET = 8  # shorter values ("none", "x") are placeholders; scrubbing them would mangle text
_seen: set[str] = set()  # explicit keys handed out, so `redact` knows them too
_guards: set[str] = set()  # guard keys of `reason serve` in this process: never sent to any model server
_stored_cache: tuple[tuple[str, int, int], set[str]] | None = None  # keys.json's values by (path, mtime, size)


def config_dir() -> Path:
    """Where `reason` keeps keys.json and config.toml."""
    if env := os.environ.get("REASON_CONFIG_DIR"):
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("reason"))


def keys_path() -> Path:
    return config_dir() / "keys.json"


def env_var(provider: str) -> str:
    """The environment variable holding a provider's key (`OPENAI_API_KEY`, ...)."""
    return ENV_VARS.get(provider, f"{provider.upper().replace('-', '_')}_API_KEY")


def _stored() -> dict[str, str]:
    path = keys_path()
    if not path.exists():
        return {}
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(f"{path} is readable by other users; run `chmod 600 {path}`", stacklevel=3)
    try:
        data = json.loads(path.read_text() or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix it or delete it") from None
    return {k: v for k, v in data.items() if isinstance(v, str)}


def get_key(provider: str, explicit: str | None = None, required: bool = True) -> str | None:
    """The key for `provider`; raises `MissingKey` (saying how to set one) if `required` and none is found."""
    key = explicit or _stored().get(provider) or os.environ.get(env_var(provider))
    if key:
        add_secret(key)
        return key
    if required:
        raise MissingKey(
            f"no API key for {provider}: run `reason keys set {provider}` or `export {env_var(provider)}=...`"
        )
    return None


def _write(data: dict[str, str]) -> Path:
    path = keys_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def set_key(provider: str, value: str) -> Path:
    """Store a key in keys.json (mode 0600, written atomically). Returns the file's path."""
    if not value.strip():
        raise ConfigError(f"empty key for {provider}")
    return _write({**_stored(), provider: value.strip()})


def remove_key(provider: str) -> bool:
    """Delete a stored key. Returns whether there was one."""
    data = _stored()
    if data.pop(provider, None) is None:
        return False
    _write(data)
    return True


def _tail(value: str) -> str:
    return f"…{value[-4:]}" if len(value) >= MIN_SECRET else "(short)"


def list_keys() -> dict[str, str]:
    """Provider -> where its effective key comes from, with a masked tail; never the value itself."""
    found: dict[str, str] = {}
    for provider in sorted(set(ENV_VARS)):
        if value := os.environ.get(env_var(provider)):
            found[provider] = f"env {env_var(provider)} {_tail(value)}"
    for provider, value in _stored().items():
        if value:
            found[provider] = f"{keys_path()} {_tail(value)}"
    return dict(sorted(found.items()))


def add_secret(value: str | None, guard: bool = False) -> None:
    """Make `redact` scrub `value` from now on; `guard`: it is a guard key of `reason serve`, never sent out."""
    if value and len(value) >= MIN_SECRET:
        _seen.add(value)
        if guard:
            _guards.add(value)


def is_guard_key(value: str | None) -> bool:
    """Whether `value` is the guard key of a `reason serve` in this process (so it must not leave it)."""
    return bool(value) and value in _guards


def _stored_values() -> set[str]:
    """The values in keys.json, re-read only when the file changes (`redact` runs for every record written)."""
    global _stored_cache
    path = keys_path()
    try:
        st = path.stat()
    except OSError:
        return set()
    stamp = (str(path), st.st_mtime_ns, st.st_size)
    if _stored_cache is None or _stored_cache[0] != stamp:
        try:
            _stored_cache = (stamp, set(_stored().values()))
        except (ConfigError, OSError):
            return set()
    return _stored_cache[1]


def known_secrets() -> set[str]:
    """Every secret value `reason` could be holding: stored keys, provider and `reason`'s own environment
    variables, keys passed explicitly, and registered ones (`add_secret`, the serve guard key)."""
    names = (*ENV_VARS.values(), *OTHER_SECRET_ENVS)
    values = set(_seen) | _guards | {os.environ.get(var, "") for var in names} | _stored_values()
    return {v for v in values if len(v) >= MIN_SECRET}


def redact_values(text: str, extra: Iterable[str | None] = ()) -> str:
    """`text` with every known secret value (not key shapes) replaced by [REDACTED]; None in `extra`: no key."""
    for secret in sorted(known_secrets() | {s for s in extra if s and len(s) >= MIN_SECRET}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """`text` with every known secret value, and anything that looks like a key, replaced by [REDACTED]."""
    return KEY_PATTERNS.sub(REDACTED, redact_values(text, extra))


class StreamRedactor:
    """`emit` for a stream of tokens, redacted: a tail that could be the start of a known secret (at the start
    of a word) is held back until the next token shows it is not, so a key split across tokens is still
    caught, and ordinary text keeps its token boundaries. Call `flush` when the stream ends. Key shapes are
    not caught mid-stream; the finished text is redacted in full."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit, self.pending, self.last = emit, "", ""

    def _held(self, text: str) -> int:
        """How many trailing characters of `text` could begin a secret."""
        keep = 0
        for secret in known_secrets():
            for k in range(min(len(secret) - 1, len(text)), keep, -1):
                start = len(text) - k
                before = text[start - 1] if start else self.last
                if text.endswith(secret[:k]) and not before.isalnum():
                    keep = k
                    break
        return keep

    def __call__(self, token: str) -> None:
        text = redact_values(self.pending + token)
        keep = self._held(text)
        out, self.pending = text[: len(text) - keep], text[len(text) - keep:]
        if out:
            self.last = out[-1]
            self.emit(out)

    def flush(self) -> None:
        if self.pending:
            out, self.pending = redact(self.pending), ""
            self.emit(out)
