"""Several completions from the in-process model, decoded together.

Sampling k answers one after another costs k times a decode whose speed, on a CPU, is bounded by reading
the weights once per token. Here llama.cpp evaluates the prompts into one context whose sequences share
the cells of their common prefix (all of the prompt when k samples of one prompt are drawn; the system
prompt and instructions when the prompts differ), then decodes one token of every unfinished sequence per
batch: the weights are read once for all of them. This serves `LocalModel.sample` (the OpenAI `n`
parameter, done on our side: `BatchDecoder.generate`) and concurrent calls (`LocalModel(slots=k)`: k
problems of a benchmark, or k chains of `vote`, at once: `Scheduler`, which lets calls join and leave
between steps). `benchmarks/local_model.py batch` and `slots` measure the gain against sequential calls.

Sampling follows llama-cpp-python's chat-completion defaults (top-k 40, top-p 0.95, min-p 0.05, then the
temperature; greedy at temperature 0), with one seeded generator per sequence. The prompt is the model's
own chat template, rendered and tokenized as `create_chat_completion` does.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator.confidence import token_stats

TOP_K, TOP_P, MIN_P = 40, 0.95, 0.05


@dataclass
class Sample:
    """One decoded sequence: its token ids, text and why it ended (`stop` or `length`); for each token, its
    log-probability and the position's confidence (`orchestrator.confidence.token_stats`)."""

    tokens: list[int]
    text: str
    finish_reason: str
    logprobs: list[float] = field(default_factory=list)
    confs: list[float] = field(default_factory=list)


@dataclass
class Stats:
    """A sequence's per-token log-probabilities and confidences, as it decodes."""

    logprobs: list[float] = field(default_factory=list)
    confs: list[float] = field(default_factory=list)

    def add(self, logits: np.ndarray, token: int) -> None:
        lp, conf = token_stats(logits, token)
        self.logprobs.append(lp)
        self.confs.append(conf)


@dataclass
class Request:
    """One completion to decode: prompt tokens, sampling parameters and stop strings."""

    prompt: list[int]
    seed: int | None = None
    temperature: float = 0.0
    max_tokens: int = 1024
    stop: list[str] | None = None


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
    result = formatter(messages=messages)  # type: ignore[arg-type]  # role/content dicts: llama_cpp's TypedDicts
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


def shared_prefix(prompts: Sequence[list[int]]) -> int:
    """The length of the token prefix common to all `prompts`."""
    first, n = prompts[0], min(len(p) for p in prompts)
    for i in range(n):
        t = first[i]
        if any(p[i] != t for p in prompts):
            return i
    return n


def cells(requests: Sequence[Request]) -> int:
    """KV cells for decoding `requests` together: their shared prefix once, each rest of a prompt, each
    continuation (rounded up to 256)."""
    shared = shared_prefix([r.prompt for r in requests])
    total = shared + sum(len(r.prompt) - shared + r.max_tokens for r in requests) + 1
    return -(-total // 256) * 256


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

    def decode(self, entries: list[tuple[int, int, list[int], bool]]) -> list[np.ndarray]:
        """Decode (token, position, sequence ids, want logits) entries, in chunks of the batch size; return
        a copy of the logits of each entry that wants them, in order."""
        out = []
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
            out += [self._logits(i).copy() for i, entry in enumerate(chunk) if entry[3]]
        return out

    def _logits(self, i: int) -> np.ndarray:
        ptr = self.lib.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def generate(self, requests: Sequence[Request]) -> list[Sample]:
        """Decode `requests` together: the prefix their prompts share is evaluated once into cells every
        sequence uses, the rest of each prompt into its own sequence; then one token per unfinished
        sequence per step."""
        n = len(requests)
        if n > self.n_seq:
            raise ValueError(f"{n} sequences asked of a decoder for {self.n_seq}")
        if cells(requests) > self.n_ctx:
            raise ValueError(f"{n} sequences need {cells(requests)} cells; the decoder has {self.n_ctx}")
        if any(not r.prompt for r in requests):
            raise ValueError("an empty prompt")
        self.clear()
        prompts = [r.prompt for r in requests]
        shared = shared_prefix(prompts)
        whole = [s for s in range(n) if len(prompts[s]) == shared]  # prompts that are all prefix
        everyone = list(range(n))
        entries = [(t, p, everyone, bool(whole) and p == shared - 1) for p, t in enumerate(prompts[0][:shared])]
        for s in range(n):
            rest = prompts[s][shared:]
            entries += [(t, shared + i, [s], i == len(rest) - 1) for i, t in enumerate(rest)]
        got = self.decode(entries)
        # The logits come back in entry order: the shared prefix's last token first (if wanted), then
        # each sequence with a rest of its own, in sequence order.
        logits: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        k = 0
        if whole:
            for s in whole:
                logits[s] = got[0]
            k = 1
        for s in range(n):
            if len(prompts[s]) > shared:
                logits[s], k = got[k], k + 1
        rngs = [np.random.default_rng(r.seed) for r in requests]
        tokens: list[list[int]] = [[] for _ in range(n)]
        stats = [Stats() for _ in range(n)]
        finish: list[str | None] = [None] * n
        while True:
            live = []
            for s, r in enumerate(requests):
                if finish[s] is not None:
                    continue
                token, finish[s] = _advance(self, r, tokens[s], logits[s], rngs[s], stats[s])
                if finish[s] is None:
                    live.append((s, token))
            if not live:
                break
            got = self.decode([(token, len(prompts[s]) + len(tokens[s]) - 1, [s], True) for s, token in live])
            for (s, _), row in zip(live, got, strict=True):
                logits[s] = row
        return [_sample(self, tokens[s], r.stop, finish[s] or "stop", stats[s]) for s, r in enumerate(requests)]

    # --- the operations `Scheduler` drives ------------------------------------------------------------
    def clear(self) -> None:
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)

    def free(self, seq: int) -> None:
        """Drop a sequence's cells (cells another sequence shares stay)."""
        self.lib.llama_memory_seq_rm(self.lib.llama_get_memory(self.ctx), seq, -1, -1)

    def trim(self, seq: int, n: int) -> None:
        """Keep only the first `n` positions of a sequence."""
        self.lib.llama_memory_seq_rm(self.lib.llama_get_memory(self.ctx), seq, n, -1)

    def share(self, src: int, dst: int, n: int) -> None:
        """Let sequence `dst` use the cells of the first `n` positions of `src` (no copy, no evaluation)."""
        self.lib.llama_memory_seq_cp(self.lib.llama_get_memory(self.ctx), src, dst, 0, n)

    def is_eog(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self.vocab, token))

    def text(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore")



@dataclass(eq=False)
class _Seq:
    """A request inside the scheduler: waiting, then decoding in sequence `seq`, then done."""

    request: Request
    seq: int = -1
    tokens: list[int] = field(default_factory=list)  # sampled so far
    stats: Stats = field(default_factory=Stats)  # their log-probabilities and confidences
    kv: list[int] = field(default_factory=list)  # the tokens in this sequence's cells, by position
    source: tuple[str, _Seq, int] | None = None  # ("share" | "adopt", the sequence, prefix length)
    logits: np.ndarray | None = None
    rng: np.random.Generator | None = None
    reused: int = 0  # prompt tokens whose cells were shared from another sequence
    result: Sample | BaseException | None = None
    done: bool = False

    @property
    def cells(self) -> int:
        return len(self.request.prompt) + self.request.max_tokens


@dataclass(eq=False)
class Scheduler:
    """Continuous batching for an in-process model: concurrent calls decode together, one token of every
    running sequence per step, and a call that arrives while others run joins at the next step (a finished
    sequence frees its place at once: a batch never waits for its longest member).

    A new sequence shares the KV cells of the longest prompt prefix it has in common with a running one (a
    chain's system prompt and instructions, or the whole prompt for samples of one question), or takes over
    the cells of a finished one (a chain's next step: the previous prompt and its answer): only the rest of
    its prompt is evaluated, in the same step as the running sequences' tokens. Finished sequences keep their
    cells for that until their place or cells are needed (oldest first). There is no driver
    thread: the caller that finds no step running drives the steps (holding `lock`, the model's, for each
    one) until its own call is done, then hands over to a caller still waiting.

    `make_decoder(n_seq, n_cells)` builds the context (`BatchDecoder`, or a fake one in tests). Cells are
    reserved for a whole prompt plus `max_tokens` per sequence, so a step never runs out of them; a call
    that does not fit waits for running ones to finish, and the context is rebuilt larger when idle."""

    make_decoder: Callable[[int, int], Any]
    lock: Any
    size: int
    n_cells: int
    min_gain: int = 16  # a call waits a step to share a prefix only if it gains this many tokens
    steps: int = 0  # decode steps run so far (tests and benchmarks read these)
    admitted: int = 0
    decoder: Any = None
    _queue: list[_Seq] = field(default_factory=list)
    _running: list[_Seq] = field(default_factory=list)
    _finished: list[_Seq] = field(default_factory=list)
    _kept: list[_Seq] = field(default_factory=list)  # finished, cells kept for reuse, oldest first
    _evict: list[int] = field(default_factory=list)  # kept sequences to free before the next step
    _driving: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def submit(self, request: Request) -> tuple[Sample, int]:
        """Decode `request` with whatever else is running; its sample and how many of its prompt tokens
        were shared rather than evaluated."""
        if not request.prompt:
            raise ValueError("an empty prompt")
        mine = _Seq(request)
        with self._cond:
            self._queue.append(mine)
            self._cond.notify_all()
            while True:
                while not mine.done and self._driving:
                    self._cond.wait()
                if mine.done:
                    break
                self._driving = True
                try:
                    self._drive(mine)
                finally:
                    self._driving = False
                    self._cond.notify_all()
        if isinstance(mine.result, BaseException):
            raise mine.result
        assert mine.result is not None
        return mine.result, mine.reused

    def _drive(self, mine: _Seq) -> None:
        """Run steps until `mine` is done (the condition's lock is held, and released during each step)."""
        while not mine.done:
            try:
                admit = self._admit()
                if not admit and not self._running:  # a call too big for the context, and the context idle
                    self._grow()
                    continue
                self._cond.release()
                try:
                    with self.lock:
                        self._step(admit)
                finally:
                    self._cond.acquire()
            except BaseException as e:  # noqa: BLE001 - the step failed for every sequence in it
                self._fail_all(e)
            for seq in self._finished:
                seq.done = True
            if self._finished:
                self._finished = []
                self._cond.notify_all()

    def close(self) -> None:
        """Free the context (when no call is in flight; a later call builds a new one)."""
        with self._cond:
            if self.decoder is not None and not self._driving:
                self.decoder.close()
                self.decoder, self._kept, self._evict = None, [], []

    def _admit(self) -> list[_Seq]:
        """Move waiting calls into sequences while places and cells last (oldest call first), choosing for
        each the longest prefix to reuse: a running sequence's (shared) or a kept one's (taken over). A call
        that would share more with one admitted in this same step waits one step, so that it can share the
        cells that one is about to fill. Kept sequences are evicted, oldest first, to make room."""
        if self.decoder is None:
            self.decoder = self.make_decoder(self.size, self.n_cells)
        admit: list[_Seq] = []
        for seq in list(self._queue):
            prompt = seq.request.prompt
            cap = len(prompt) - 1  # the last prompt token is evaluated, for its logits
            best: tuple[str, _Seq, int] | None = None
            for kind, pool in (("share", self._running), ("adopt", self._kept)):
                for other in pool:
                    n = min(shared_prefix([prompt, other.kv]), cap)
                    if n > 0 and (best is None or n > best[2]):
                        best = (kind, other, n)
            new = max((shared_prefix([prompt, a.request.prompt]) for a in admit), default=0)
            if new >= (best[2] if best else 0) + self.min_gain:
                continue
            if not self._make_room(seq, best, admit):
                break
            seq.source = best
            if best and best[0] == "adopt":
                self._kept.remove(best[1])
                seq.seq = best[1].seq
            else:
                taken = {s.seq for s in self._running + self._kept + admit}
                seq.seq = min(set(range(self.size)) - taken)
            self._queue.remove(seq)
            admit.append(seq)
        return admit

    def _make_room(self, seq: _Seq, source: tuple[str, _Seq, int] | None, admit: list[_Seq]) -> bool:
        """Evict kept sequences (oldest first, never `source`'s) until `seq` has a place and its cells."""
        adopt = source[1] if source and source[0] == "adopt" else None
        while True:
            places = len(self._running) + len(self._kept) + len(admit) + (0 if adopt else 1)
            used = sum(s.cells for s in self._running + admit) + sum(len(k.kv) for k in self._kept if k is not adopt)
            if places <= self.size and used + seq.cells <= self.decoder.n_ctx:
                return True
            victims = [k for k in self._kept if k is not adopt]
            if not victims:
                return False
            self._kept.remove(victims[0])
            self._evict.append(victims[0].seq)

    def _grow(self) -> None:
        """Rebuild the context large enough for the first waiting call (only when nothing runs)."""
        need = self._queue[0].cells + 1
        self.decoder.close()
        self.decoder, self._kept, self._evict = None, [], []
        self.n_cells = max(self.n_cells, -(-need // 256) * 256)

    def _step(self, admit: list[_Seq]) -> None:
        """One decode: the next token of each running sequence, and the prompts of the admitted ones. Ended
        sequences go to `_finished`."""
        d = self.decoder
        for seq_id in self._evict:
            d.free(seq_id)
        self._evict = []
        entries: list[tuple[int, int, list[int], bool]] = []
        live: list[_Seq] = []
        for seq in list(self._running):
            r = seq.request
            assert seq.logits is not None and seq.rng is not None
            token, reason = _advance(d, r, seq.tokens, seq.logits, seq.rng, seq.stats)
            if reason is None:
                entries.append((token, len(seq.kv), [seq.seq], True))
                seq.kv.append(token)
                live.append(seq)
                continue
            seq.result = _sample(d, seq.tokens, r.stop, reason, seq.stats)
            self._running.remove(seq)
            self._finished.append(seq)
            self._kept.append(seq)  # its cells stay for a call that continues it
        for seq in admit:
            prompt = seq.request.prompt
            if seq.source is None:
                d.free(seq.seq)
            else:
                kind, other, n = seq.source
                if kind == "share":
                    d.free(seq.seq)
                    d.share(other.seq, seq.seq, n)
                else:  # the same sequence id: drop what follows the common prefix
                    d.trim(seq.seq, n)
                seq.reused = n
            seq.source = None  # no reference to the other sequence stays behind
            seq.kv = list(prompt)
            entries += [(t, p, [seq.seq], p == len(prompt) - 1) for p, t in enumerate(prompt) if p >= seq.reused]
            seq.rng = np.random.default_rng(seq.request.seed)
            live.append(seq)
        self._running += admit
        self.admitted += len(admit)
        if entries:
            got = d.decode(entries)
            for seq, row in zip(live, got, strict=True):
                seq.logits = row
        self.steps += 1

    def _fail_all(self, error: BaseException) -> None:
        """A failed step: every running and waiting call gets the error, and the context starts empty."""
        for seq in self._running + self._queue:
            seq.result = error
            self._finished.append(seq)
        self._running, self._queue[:], self._kept, self._evict = [], [], [], []
        if self.decoder is not None:
            try:
                self.decoder.clear()
            except Exception:  # noqa: BLE001 - a broken context is rebuilt on the next call
                self.decoder = None


def _advance(decoder: Any, request: Request, tokens: list[int], logits: np.ndarray,
             rng: np.random.Generator, stats: Stats) -> tuple[int, str | None]:
    """Sample a sequence's next token and append it to `tokens` (its statistics to `stats`) unless it is the
    end of generation; return it and why the sequence ends (`stop`, `length`), or None when the token is to
    be decoded."""
    token = pick(logits, request.temperature, rng)
    if decoder.is_eog(token):
        return token, "stop"
    tokens.append(token)
    stats.add(logits, token)
    if request.stop and _stopped(decoder, tokens, request.stop):
        return token, "stop"
    if len(tokens) >= request.max_tokens:
        return token, "length"
    return token, None


def _stopped(decoder: Any, tokens: list[int], stop: list[str]) -> bool:
    tail = decoder.text(tokens[-16:])
    return any(x and x in tail for x in stop)


def _sample(decoder: Any, tokens: list[int], stop: list[str] | None, reason: str, stats: Stats) -> Sample:
    text = decoder.text(tokens)
    if stop:
        cut = [text.find(x) for x in stop if x and text.find(x) >= 0]
        text = text[: min(cut)] if cut else text
    return Sample(tokens, text, reason, stats.logprobs, stats.confs)
