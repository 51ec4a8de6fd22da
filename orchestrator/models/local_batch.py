"""Several samples of one prompt from the in-process model, decoded together.

Sampling k answers one after another costs k times a decode whose speed, on a CPU, is bounded by reading
the weights once per token. Here llama.cpp evaluates the prompt once into KV cells shared by k sequences,
then decodes one token of every unfinished sequence per batch: the weights are read once for all of them.
This is what `vote` and a recorded pool of samples want from a local model (the OpenAI `n` parameter,
done on our side). `benchmarks/local_model.py batch` measures the gain against k sequential samples.

Sampling follows llama-cpp-python's chat-completion defaults (top-k 40, top-p 0.95, min-p 0.05, then the
temperature; greedy at temperature 0), with one seeded generator per sample. The prompt is the model's own
chat template, rendered and tokenized as `create_chat_completion` does.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

TOP_K, TOP_P, MIN_P = 40, 0.95, 0.05


@dataclass
class Sample:
    """One decoded sequence: its token ids, text and why it ended (`stop` or `length`)."""

    tokens: list[int]
    text: str
    finish_reason: str


def chat_prompt(llm: Any, messages: list[dict[str, Any]]) -> list[int]:
    """The prompt tokens `create_chat_completion` would evaluate for `messages` (the GGUF chat template)."""
    from llama_cpp import llama_chat_format

    template = llm.metadata.get("tokenizer.chat_template")
    if not template or llm.chat_format != "chat_template.default":
        raise ValueError(f"batched sampling needs the model's own chat template (chat format {llm.chat_format!r})")
    eos, bos = llm.token_eos(), llm.token_bos()
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )
    result = formatter(messages=messages)
    return llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)


def pick(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Next token from raw logits: greedy at temperature 0, else top-k, top-p, min-p, temperature."""
    if temperature <= 0:
        return int(np.argmax(logits))
    top = np.argpartition(logits, -TOP_K)[-TOP_K:]
    top = top[np.argsort(logits[top])[::-1]]  # the k best, best first
    z = logits[top].astype(np.float64)
    p = np.exp(z - z[0])
    p /= p.sum()
    keep = int(np.searchsorted(np.cumsum(p), TOP_P)) + 1  # the smallest prefix with mass >= top_p
    keep = min(keep, int(np.sum(p >= MIN_P * p[0])))  # and no token below min_p of the best one
    keep = max(keep, 1)
    z = z[:keep] / temperature
    q = np.exp(z - z[0])
    q /= q.sum()
    return int(top[rng.choice(keep, p=q)])


def needed(prompt_tokens: int, n: int, max_tokens: int) -> int:
    """KV cells for `n` continuations of `max_tokens` after a shared prompt (rounded up to 256)."""
    return -(-(prompt_tokens + n * max_tokens + 1) // 256) * 256


class BatchDecoder:
    """A llama.cpp context with room for `n_seq` sequences, on the weights of an already loaded `Llama`. Not
    thread-safe: callers hold the model's lock (`LocalModel.sample` does)."""

    def __init__(self, llm: Any, n_seq: int, n_ctx: int, n_threads: int) -> None:
        import llama_cpp

        self.lib, self.llm, self.n_seq, self.n_ctx = llama_cpp, llm, n_seq, n_ctx
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_seq_max = n_ctx, n_seq
        params.n_batch = params.n_ubatch = 512
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = True  # the sequences share the prompt's cells
        self.ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not make a context of {n_ctx} tokens for {n_seq} sequences")
        self.batch = llama_cpp.llama_batch_init(512, 0, n_seq)
        self.vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)

    def close(self) -> None:
        if self.ctx:
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ctx)
            self.ctx = None

    def _decode(self, entries: list[tuple[int, int, list[int], bool]]) -> None:
        """Decode (token, position, sequence ids, want logits) entries, in chunks of the batch size."""
        for start in range(0, len(entries), 512):
            chunk = entries[start : start + 512]
            b = self.batch
            b.n_tokens = len(chunk)
            for i, (token, pos, seqs, logits) in enumerate(chunk):
                b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, len(seqs), int(logits)
                for j, s in enumerate(seqs):
                    b.seq_id[i][j] = s
            code = self.lib.llama_decode(self.ctx, b)
            if code != 0:
                raise RuntimeError(f"llama_decode failed ({code}): the batch did not fit the context")

    def _logits(self, i: int) -> np.ndarray:
        ptr = self.lib.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def sample(self, prompt: list[int], seeds: list[int], temperature: float, max_tokens: int,
               stop: list[str] | None = None) -> list[Sample]:
        """`len(seeds)` continuations of `prompt`, which is evaluated once for all of them."""
        n = len(seeds)
        if n > self.n_seq:
            raise ValueError(f"{n} samples asked of a decoder for {self.n_seq}")
        if needed(len(prompt), n, max_tokens) > self.n_ctx:
            raise ValueError(f"{n} x {max_tokens} tokens after a prompt of {len(prompt)} do not fit {self.n_ctx}")
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)
        # The prompt once, every sequence id on each of its tokens: the cells are shared, not copied.
        seqs = list(range(n))
        self._decode([(t, p, seqs, p == len(prompt) - 1) for p, t in enumerate(prompt)])
        first = self._logits(-1).copy()
        rngs = [np.random.default_rng(s) for s in seeds]
        tokens: list[list[int]] = [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        logits = [first] * n
        pos = len(prompt)
        while True:
            live = []
            for s in range(n):
                if finish[s] is not None:
                    continue
                token = pick(logits[s], temperature, rngs[s])
                if self.lib.llama_vocab_is_eog(self.vocab, token):
                    finish[s] = "stop"
                    continue
                tokens[s].append(token)
                if stop and self._stopped(tokens[s], stop):
                    finish[s] = "stop"
                    continue
                if len(tokens[s]) >= max_tokens:
                    finish[s] = "length"
                    continue
                live.append((s, token))
            if not live:
                break
            self._decode([(token, pos, [s], True) for s, token in live])
            for i, (s, _) in enumerate(live):
                logits[s] = self._logits(i).copy()
            pos += 1
        samples = []
        for s in range(n):
            text = self.llm.detokenize(tokens[s]).decode("utf-8", errors="ignore")
            if stop:
                cut = [text.find(x) for x in stop if x and text.find(x) >= 0]
                text = text[: min(cut)] if cut else text
            samples.append(Sample(tokens[s], text, finish[s] or "stop"))
        return samples

    def _stopped(self, tokens: list[int], stop: list[str]) -> bool:
        tail = self.llm.detokenize(tokens[-16:]).decode("utf-8", errors="ignore")
        return any(x and x in tail for x in stop)
