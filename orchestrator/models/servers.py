"""GPU inference servers as named backends: `vllm/MODEL`, `sglang/MODEL`, `llama-server/MODEL`, `ollama/MODEL`.

Each speaks OpenAI's chat API (`OpenAIModel`) at its usual local address, or at REASON_<SERVER>_URL
(`REASON_VLLM_URL=http://gpu-box:8000/v1`); a key, if the server wants one, comes from REASON_SERVER_API_KEY.
What each is known to do decides how `reason` talks to it (docs/gpu.md has the recipe for starting each):
- `n`: vLLM and SGLang draw a vote's samples in one request (`OpenAIModel.sample`); llama-server refuses
  `n` > 1 ("Only one completion choice is allowed") and Ollama's OpenAI endpoint does not take it (its list
  of request fields has no `n`), so there each sample is its own request, all in flight at once.
  REASON_N=1 or =0 overrides this.
- logprobs: asked for by default where the server returns them on the chat endpoint (vLLM, SGLang,
  llama-server), for `vote:weight=...`; REASON_LOGPROBS=0 turns them off.
- token counts and prefix caching are the server's own: `usage`, with `prompt_tokens_details.cached_tokens`
  where the server reports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.models.base import CallOptions
from orchestrator.models.openai_compat import OpenAIModel, n_option


@dataclass(frozen=True)
class Server:
    """One kind of inference server: where it listens by default and what its chat endpoint does."""

    url: str
    n: bool  # several samples in one request
    logprobs: bool  # token log-probabilities on /v1/chat/completions


SERVERS: dict[str, Server] = {
    "vllm": Server("http://127.0.0.1:8000/v1", n=True, logprobs=True),
    "sglang": Server("http://127.0.0.1:30000/v1", n=True, logprobs=True),
    "llama-server": Server("http://127.0.0.1:8080/v1", n=False, logprobs=True),
    "ollama": Server("http://127.0.0.1:11434/v1", n=False, logprobs=False),
}


def url_variable(server: str) -> str:
    """The environment variable that moves `server` off its default address: REASON_VLLM_URL, ..."""
    return "REASON_" + server.upper().replace("-", "_") + "_URL"


class ServerModel(OpenAIModel):
    """`vllm/MODEL` and the other `SERVERS`: an OpenAI-compatible server that `reason` knows the habits of."""

    def __init__(self, name: str, options: CallOptions | None = None, *, base_url: str | None = None,
                 logprobs: bool | None = None, n: bool | None = None, **settings: Any) -> None:
        server, _, model = name.partition("/")
        if server not in SERVERS or not model:
            raise ConfigError(f"{name!r}: name a server's model as {', '.join(f'{s}/MODEL' for s in SERVERS)}")
        spec = SERVERS[server]
        url = base_url or os.environ.get(url_variable(server), "").strip() or spec.url
        if logprobs is None:
            env = os.environ.get("REASON_LOGPROBS", "").strip()
            logprobs = env not in ("", "0") if env else spec.logprobs
        super().__init__(f"{url}#{model}", options, base_url=url, logprobs=logprobs, n=n_option(n, spec.n),
                         **settings)
        self.name, self.server = name, server
