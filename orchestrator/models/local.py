"""The embedded local models, run in-process with llama-cpp-python.

One `Llama` instance per weights file is shared by every `LocalModel` in the process, guarded by a lock
(llama.cpp contexts are not thread-safe). llama-cpp-python keeps the KV cache of the last prompt and only
evaluates the part of a new prompt after the longest common prefix, so a reasoning chain whose messages
grow append-only pays prompt evaluation only for its new tokens. We read llama.cpp's own counters to
report how many prompt tokens were really evaluated (`Usage.cached_tokens` = prompt tokens reused).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, ContextLengthExceeded, MissingDependency
from orchestrator.models.base import CallOptions, ChatModel, Completion, Message, Usage
from orchestrator.models.weights import WEIGHTS, weights_path

_LOADED: dict[tuple[str, int, int], Any] = {}
_LOCKS: dict[tuple[str, int, int], threading.Lock] = {}
_DECODERS: dict[tuple[str, int, int], Any] = {}  # the batch decoder of each loaded model (see `sample`)
_REGISTRY_LOCK = threading.Lock()


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise MissingDependency(
            "the embedded model needs llama-cpp-python: pip install 'reason[local]'"
        ) from e
    return llama_cpp


@atexit.register
def _close_all() -> None:
    """Free llama.cpp models before interpreter shutdown (their finalizers fail noisily at that point)."""
    with _REGISTRY_LOCK:
        for decoder in _DECODERS.values():
            decoder.close()
        _DECODERS.clear()
        for llm in _LOADED.values():
            llm.close()
        _LOADED.clear()


def load_llama(path: Path, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    """The shared `Llama` for a weights file (loaded once per process) and its lock."""
    key = (str(path), n_ctx, n_threads)
    with _REGISTRY_LOCK:
        if key not in _LOADED:
            llama_cpp = _import_llama()
            _LOADED[key] = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_batch=512, verbose=False, seed=0
            )
            _LOCKS[key] = threading.Lock()
        return _LOADED[key], _LOCKS[key]


class LocalModel(ChatModel):
    """`local/qwen2.5-coder-1.5b`, `local/smollm2-135m`, or `local/PATH.gguf`: llama.cpp in this process."""

    is_local = True

    def __init__(
        self,
        name: str,
        options: CallOptions | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        path: str | Path | None = None,
    ) -> None:
        super().__init__(options)
        self.name = name
        key = name.split("/", 1)[1] if "/" in name else name
        if path is not None:
            self.path: Path | None = Path(path)
            self.key = None
        elif key in WEIGHTS:
            self.path, self.key = None, key  # resolved (and fetched if needed) on first call
        elif key.endswith(".gguf"):
            self.path, self.key = Path(key), None
            if not self.path.is_file():
                raise ConfigError(f"no GGUF file at {key}")
        else:
            raise ConfigError(f"unknown local model {key!r}; known: {', '.join(WEIGHTS)} or local/PATH.gguf")
        default_ctx = min(WEIGHTS[self.key].context_window, 8192) if self.key else 4096
        self.context_window = n_ctx or int(os.environ.get("REASON_LOCAL_N_CTX", default_ctx))
        self.n_threads = n_threads or int(os.environ.get("REASON_LOCAL_THREADS", os.cpu_count() or 2))

    def llama(self) -> tuple[Any, threading.Lock]:
        if self.path is None:
            assert self.key is not None
            self.path = weights_path(self.key)
        return load_llama(self.path, self.context_window, self.n_threads)

    def _kwargs(self, options: CallOptions) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "temperature": 0.0 if options.temperature is None else options.temperature,
            "max_tokens": options.max_tokens or 1024,
        }
        if options.top_p is not None:
            kw["top_p"] = options.top_p
        if options.stop:
            kw["stop"] = options.stop
        if options.seed is not None:
            kw["seed"] = options.seed
        kw.update(options.extra)
        return kw

    def _run(
        self, messages: list[Message], options: CallOptions, on_token: Callable[[str], None] | None
    ) -> Completion:
        llm, lock = self.llama()
        llama_cpp = _import_llama()
        with lock:
            llama_cpp.llama_perf_context_reset(llm.ctx)
            try:
                if on_token is None:
                    raw = llm.create_chat_completion(messages=messages, **self._kwargs(options))
                    text = raw["choices"][0]["message"]["content"] or ""
                    finish = raw["choices"][0].get("finish_reason") or "stop"
                    prompt_tokens = raw["usage"]["prompt_tokens"]
                else:
                    pieces: list[str] = []
                    finish = "stop"
                    for chunk in llm.create_chat_completion(
                        messages=messages, stream=True, **self._kwargs(options)
                    ):
                        choice = chunk["choices"][0]
                        piece = choice.get("delta", {}).get("content")
                        if piece:
                            pieces.append(piece)
                            on_token(piece)
                        finish = choice.get("finish_reason") or finish
                    text = "".join(pieces)
                    raw = {"text": text, "finish_reason": finish}
                    prompt_tokens = None
            except ValueError as e:
                if "context window" in str(e) or "exceed" in str(e):
                    raise ContextLengthExceeded(f"{self.name}: {e}") from e
                raise
            perf = llama_cpp.llama_perf_context(llm.ctx)
            evaluated, decoded = int(perf.n_p_eval), int(perf.n_eval)
            if prompt_tokens is None:  # streamed: the KV cache now holds the prompt and the decoded tokens
                prompt_tokens = max(evaluated, llm.n_tokens - decoded)
                # The last sampled token is never decoded when generation stops at the length limit.
                generated = decoded + (1 if finish == "length" else 0)
            else:
                generated = raw["usage"]["completion_tokens"]
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=generated,
            cached_tokens=max(0, prompt_tokens - evaluated),
        )
        return Completion(text=text, model=self.name, finish_reason=finish, usage=usage, raw=raw)

    def _complete(self, messages: list[Message], options: CallOptions) -> Completion:
        return self._run(messages, options, None)

    def _stream(
        self, messages: list[Message], options: CallOptions, on_token: Callable[[str], None]
    ) -> Completion:
        return self._run(messages, options, on_token)

    def sample(self, messages: list[Message], seeds: list[int], **options: Any) -> list[Completion]:
        """One completion per seed, decoded together in one batch (see `local_batch`): the prompt is evaluated
        once and every step decodes a token of each unfinished sample. Each completion reports the prompt
        (cached for all but the first), its own tokens, and its share of the batch's seconds."""
        from orchestrator.models.local_batch import BatchDecoder, chat_prompt, needed

        opts = self.options.merged(**options)
        if len(seeds) < 2 or opts.extra or opts.top_p is not None:
            return super().sample(messages, seeds, **options)  # options the batch sampler does not implement
        llm, lock = self.llama()
        max_tokens = opts.max_tokens or 1024
        temperature = 0.0 if opts.temperature is None else opts.temperature
        start = time.perf_counter()
        try:
            prompt = chat_prompt(llm, messages)
        except ValueError:  # a GGUF without its own chat template: llama-cpp-python formats it, one call each
            return super().sample(messages, seeds, **options)
        with lock:
            cells = needed(len(prompt), len(seeds), max_tokens)
            key = (str(self.path), self.context_window, self.n_threads)
            decoder = _DECODERS.get(key)
            if decoder is None or decoder.n_seq < len(seeds) or decoder.n_ctx < cells:
                if decoder is not None:
                    decoder.close()
                size = max(cells, decoder.n_ctx if decoder else 0)
                decoder = _DECODERS[key] = BatchDecoder(llm, max(len(seeds), 8), size, self.n_threads)
            samples = decoder.sample(prompt, seeds, temperature, max_tokens, opts.stop)
        share = (time.perf_counter() - start) / len(seeds)
        return [
            Completion(
                text=s.text, model=self.name, finish_reason=s.finish_reason, seconds=share,
                usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(s.tokens),
                            cached_tokens=0 if i == 0 else len(prompt)),  # evaluated once, for the first
                raw={"text": s.text, "batch": len(seeds), "seed": seed},
            )
            for i, (s, seed) in enumerate(zip(samples, seeds, strict=True))
        ]

    def count_tokens(self, text: str) -> int:
        llm, _ = self.llama()
        return len(llm.tokenize(text.encode(), special=False))

