"""The embedded local models, run in-process with llama-cpp-python.

One `Llama` instance per weights file is shared by every `LocalModel` in the process. One lock guards all
of them: llama.cpp contexts are not thread-safe, and two models decoding at once on a CPU slow each other
far more than twice (their threads spin-wait). llama-cpp-python keeps the KV cache of the last prompt and only
evaluates the part of a new prompt after the longest common prefix, so a reasoning chain whose messages
grow append-only pays prompt evaluation only for its new tokens. We read llama.cpp's own counters to
report how many prompt tokens were really evaluated (`Usage.cached_tokens` = prompt tokens reused).

`LocalModel(slots=k)` serves up to k concurrent calls together (a benchmark's k problems, `vote`'s k
chains): a `Scheduler` decodes one token of every running call per step, lets new calls join as others
finish, and reuses the cells of shared and earlier prompts (`local_batch`). Greedy text can differ from
a lone call's where two tokens are within rounding of each other.

On a llama.cpp built with a GPU backend (scripts/setup.sh builds CUDA where it finds a GPU and nvcc) every
layer is offloaded unless `gpu_layers` or REASON_LOCAL_GPU_LAYERS says otherwise; a CPU build offloads none,
as before. `device_info()` names the backend and the chip (`device.py`).
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
from orchestrator.models.device import default_gpu_layers, gpu_layers_from_env, local_device
from orchestrator.models.weights import WEIGHTS, hub_name, hub_path, weights_path

_LOADED: dict[tuple[str, int, int, int], Any] = {}
_COMPUTE_LOCK = threading.Lock()  # one model computes at a time, in this process
_DECODERS: dict[tuple[str, int, int, int], Any] = {}  # the batch decoder of each loaded model (see `sample`)
_SCHEDULERS: list[Any] = []  # of `LocalModel(slots > 1)`s, each with a context of its own
_REGISTRY_LOCK = threading.Lock()


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise MissingDependency(
            "the embedded model needs llama-cpp-python: pip install 'reasonloop[local]'"
        ) from e
    return llama_cpp


@atexit.register
def _close_all() -> None:
    """Free llama.cpp models before interpreter shutdown (their finalizers fail noisily at that point)."""
    with _REGISTRY_LOCK:
        for scheduler in _SCHEDULERS:
            scheduler.close()
        _SCHEDULERS.clear()
        for decoder in _DECODERS.values():
            decoder.close()
        _DECODERS.clear()
        for llm in _LOADED.values():
            llm.close()
        _LOADED.clear()


def load_llama(path: Path, n_ctx: int, n_threads: int, n_gpu_layers: int = 0) -> tuple[Any, threading.Lock]:
    """The shared `Llama` for a weights file (loaded once per process) and its lock. `n_gpu_layers`: layers
    offloaded to the GPU (-1: all)."""
    key = (str(path), n_ctx, n_threads, n_gpu_layers)
    with _REGISTRY_LOCK:
        if key not in _LOADED:
            llama_cpp = _import_llama()
            _LOADED[key] = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_batch=512, verbose=False, seed=0,
                n_gpu_layers=n_gpu_layers,
            )
        return _LOADED[key], _COMPUTE_LOCK


def _env_count(name: str, default: int) -> int:
    """A positive whole number from the environment variable `name`, or `default` when it is unset."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


class LocalModel(ChatModel):
    """`local/qwen2.5-coder-1.5b`, `local/smollm2-135m`, `local/PATH.gguf` or `hf/OWNER/REPO/FILE.gguf`: llama.cpp
    in this process, on the GPU where its build has one."""

    is_local = True
    context_window: int  # always known here: n_ctx, REASON_LOCAL_N_CTX or the weights' own (see __init__)

    def __init__(
        self,
        name: str,
        options: CallOptions | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        path: str | Path | None = None,
        slots: int | None = None,
        gpu_layers: int | None = None,
    ) -> None:
        """`gpu_layers`: layers to offload to the GPU (-1: all); default REASON_LOCAL_GPU_LAYERS, else all of them
        where llama.cpp was built with a GPU backend and none on a CPU build."""
        super().__init__(options)
        self.name = name
        key = name.split("/", 1)[1] if "/" in name else name
        self.hub: str | None = None  # an hf/ name, downloaded on first call
        if path is not None:
            self.path: Path | None = Path(path)
            self.key = None
        elif name.startswith("hf/"):
            hub_name(name)  # a malformed name fails here, not at the first call
            self.path, self.key, self.hub = None, None, name
        elif key in WEIGHTS:
            self.path, self.key = None, key  # resolved (and fetched if needed) on first call
        elif key.endswith(".gguf"):
            self.path, self.key = Path(key), None
            if not self.path.is_file():
                raise ConfigError(f"no GGUF file at {key}")
        else:
            raise ConfigError(f"unknown local model {key!r}; known: {', '.join(WEIGHTS)}, local/PATH.gguf"
                              " or hf/OWNER/REPO/FILE.gguf")
        default_ctx = min(WEIGHTS[self.key].context_window, 8192) if self.key else 4096
        if self.key:
            self.sample_temperature = WEIGHTS[self.key].sample_temperature
        self.context_window = n_ctx or _env_count("REASON_LOCAL_N_CTX", default_ctx)
        self.n_threads = n_threads or _env_count("REASON_LOCAL_THREADS", os.cpu_count() or 2)
        self.slots = _env_count("REASON_LOCAL_SLOTS", 1) if slots is None else slots
        if self.slots < 1:
            raise ConfigError(f"slots must be at least 1, not {self.slots}")
        self.reports_confidence = self.slots > 1  # calls go through the batch decoders (see `_complete`)
        self._scheduler: Any = None
        if gpu_layers is not None and gpu_layers < -1:
            raise ConfigError(f"gpu_layers must be -1 (all), 0 (none) or a number of layers, not {gpu_layers}")
        self._gpu_layers = gpu_layers_from_env() if gpu_layers is None else gpu_layers

    @property
    def gpu_layers(self) -> int:
        """Layers offloaded to the GPU (-1: all; 0 on a CPU build). Asks llama.cpp, so it imports it."""
        if self._gpu_layers is None:
            self._gpu_layers = default_gpu_layers()
        return self._gpu_layers

    def device_info(self) -> dict[str, Any]:
        """{"backend", "device", "gpu_layers"}: llama.cpp's build and the chip this model runs on."""
        _import_llama()
        return local_device(self.gpu_layers)

    def llama(self) -> tuple[Any, threading.Lock]:
        if self.path is None:
            self.path = hub_path(self.hub) if self.hub else weights_path(self.key or "")
        return load_llama(self.path, self.context_window, self.n_threads, self.gpu_layers)

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
        if self.slots > 1 and not options.extra and options.top_p is None:
            return self._scheduled(messages, options)
        return self._run(messages, options, None)

    def _scheduled(self, messages: list[Message], options: CallOptions) -> Completion:
        """A call decoded together with the other calls in flight (see `Scheduler`)."""
        from orchestrator.confidence import summarise
        from orchestrator.models.local_batch import BatchDecoder, Scheduler

        llm, lock = self.llama()
        prompt = self._prompt(llm, messages)
        if prompt is None:  # no chat template of its own: llama-cpp-python formats it, one call at a time
            return self._run(messages, options, None)
        with _REGISTRY_LOCK:
            if self._scheduler is None:
                cells = self.slots * min(self.context_window, 4096)
                self._scheduler = Scheduler(
                    lambda n_seq, n_cells: BatchDecoder(llm, n_seq, n_cells, self.n_threads),
                    lock, self.slots, cells)
                _SCHEDULERS.append(self._scheduler)
        sample, reused = self._scheduler.submit(self._request(prompt, options, options.seed))
        return Completion(
            text=sample.text, model=self.name, finish_reason=sample.finish_reason,
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(sample.tokens), cached_tokens=reused),
            confidence=summarise(sample.logprobs, sample.confs), raw={"text": sample.text, "slots": self.slots},
        )

    def _prompt(self, llm: Any, messages: list[Message]) -> list[int] | None:
        """The prompt tokens the batch decoders evaluate (the GGUF's own chat template); None for a GGUF
        without one. A prompt that leaves no room in the context window is refused."""
        from orchestrator.models.local_batch import chat_prompt

        try:
            prompt = chat_prompt(llm, messages)
        except ValueError:
            return None
        if len(prompt) >= self.context_window:
            raise ContextLengthExceeded(
                f"{self.name}: the prompt has {len(prompt)} tokens; the context window is {self.context_window}")
        return prompt

    def _request(self, prompt: list[int], options: CallOptions, seed: int | None) -> Any:
        """What the batch decoders decode for a call: greedy unless a temperature is set, and no more new
        tokens than the context window leaves after the prompt."""
        from orchestrator.models.local_batch import Request

        temperature = 0.0 if options.temperature is None else options.temperature
        max_tokens = min(options.max_tokens or 1024, self.context_window - len(prompt))
        return Request(prompt, seed, temperature, max_tokens, options.stop)

    def close(self) -> None:
        """Free the context of this model's scheduler (the weights stay loaded for the process)."""
        with _REGISTRY_LOCK:
            if self._scheduler is not None:
                self._scheduler.close()
                _SCHEDULERS.remove(self._scheduler)
                self._scheduler = None

    def _decoder(self, llm: Any, n_seq: int, n_cells: int) -> Any:
        """The batch decoder of this model's weights, grown to `n_seq` sequences and `n_cells` cells if it
        is smaller (the model's lock is held)."""
        from orchestrator.models.local_batch import BatchDecoder

        key = (str(self.path), self.context_window, self.n_threads, self.gpu_layers)
        decoder = _DECODERS.get(key)
        if decoder is None or decoder.n_seq < n_seq or decoder.n_ctx < n_cells:
            if decoder is not None:
                n_seq, n_cells = max(n_seq, decoder.n_seq), max(n_cells, decoder.n_ctx)
                decoder.close()
            decoder = _DECODERS[key] = BatchDecoder(llm, max(n_seq, self.slots, 8), n_cells, self.n_threads)
        return decoder

    def _stream(
        self, messages: list[Message], options: CallOptions, on_token: Callable[[str], None]
    ) -> Completion:
        return self._run(messages, options, on_token)

    def sample(self, messages: list[Message], seeds: list[int], **options: Any) -> list[Completion]:
        """One completion per seed, decoded together in one batch (see `local_batch`; with slots, through the
        scheduler): the prompt is evaluated once and every step decodes a token of each unfinished sample.
        Each completion reports the prompt (cached for all but the first), its own tokens, and its share of
        the batch's seconds."""
        from orchestrator.confidence import summarise
        from orchestrator.models.local_batch import cells

        opts = self.options.merged(**options)
        if len(seeds) < 2 or opts.extra or opts.top_p is not None:
            return super().sample(messages, seeds, **options)  # options the batch sampler does not implement
        if self.slots > 1:  # the scheduler shares the prompt's cells, and other calls decode alongside
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(len(seeds), self.slots)) as pool:
                return list(pool.map(lambda s: self.complete(messages, **{**options, "seed": s}), seeds))
        llm, lock = self.llama()
        start = time.perf_counter()
        prompt = self._prompt(llm, messages)
        if prompt is None:  # a GGUF without its own chat template: llama-cpp-python formats it, one call each
            return super().sample(messages, seeds, **options)
        requests = [self._request(prompt, opts, seed) for seed in seeds]
        with lock:
            samples = self._decoder(llm, len(requests), cells(requests)).generate(requests)
        share = (time.perf_counter() - start) / len(seeds)
        return [
            Completion(
                text=s.text, model=self.name, finish_reason=s.finish_reason, seconds=share,
                usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(s.tokens),
                            cached_tokens=0 if i == 0 else len(prompt)),  # evaluated once, for the first
                confidence=summarise(s.logprobs, s.confs),
                raw={"text": s.text, "batch": len(seeds), "seed": seed},
            )
            for i, (s, seed) in enumerate(zip(samples, seeds, strict=True))
        ]

    def count_tokens(self, text: str) -> int:
        llm, _ = self.llama()
        return len(llm.tokenize(text.encode(), special=False))

