"""The scheduler that decodes concurrent calls to a local model together (continuous batching), driven
against a fake decoder that keeps real per-sequence cells and checks every position it is given."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from orchestrator.models.local_batch import Request, Sample, Scheduler, cells, shared_prefix

V = 64  # vocabulary; token 0 ends a sequence


class FakeDecoder:
    """Cells per sequence, like llama.cpp's: `decode` appends a token at the sequence's next position (and
    fails on any other), `share` copies a prefix, `trim` and `free` drop cells. The next token after a
    sequence is its last token + 1 (so a prompt ending in t counts up to V - 1, then ends)."""

    def __init__(self, n_seq: int, n_ctx: int, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.n_seq, self.n_ctx, self.delay, self.fail_at = n_seq, n_ctx, delay, fail_at
        self.cells: dict[int, list[int]] = {}
        self.evaluated = 0  # tokens decoded (prompt tokens and generated ones)
        self.decodes = 0
        self.closed = False

    def decode(self, entries):
        self.decodes += 1
        if self.fail_at is not None and self.decodes >= self.fail_at:
            raise RuntimeError("llama_decode failed (1)")
        time.sleep(self.delay)
        out = []
        for token, pos, seqs, want in entries:
            for s in seqs:
                have = self.cells.setdefault(s, [])
                assert pos == len(have), f"sequence {s}: position {pos}, but it holds {len(have)} cells"
                have.append(token)
            self.evaluated += 1
            if want:
                row = np.full(V, -10.0, dtype=np.float32)
                row[(token + 1) % V] = 10.0
                out.append(row)
        assert sum(len(c) for c in self.cells.values()) <= self.n_ctx
        return out

    def share(self, src, dst, n):
        assert len(self.cells.get(src, [])) >= n
        self.cells[dst] = list(self.cells[src][:n])

    def trim(self, seq, n):
        self.cells[seq] = self.cells.get(seq, [])[:n]

    def free(self, seq):
        self.cells.pop(seq, None)

    def clear(self):
        self.cells.clear()

    def close(self):
        self.closed = True

    def is_eog(self, token):
        return token == 0

    def text(self, tokens):
        return " ".join(map(str, tokens))


def scheduler(size=4, n_cells=4096, **fake) -> tuple[Scheduler, list[FakeDecoder]]:
    made: list[FakeDecoder] = []

    def make(n_seq, n_ctx):
        made.append(FakeDecoder(n_seq, n_ctx, **fake))
        return made[-1]

    return Scheduler(make, threading.Lock(), size, n_cells), made


def counting(last: int, n: int | None = None) -> list[int]:
    """What the fake model writes after a prompt ending in `last`."""
    out = list(range(last + 1, V))
    return out if n is None else out[:n]


def in_threads(fn, args) -> list:
    results: list = [None] * len(args)

    def call(i):
        try:
            results[i] = fn(args[i])
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(args))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    return results


def test_concurrent_calls_each_get_their_own_continuation_in_shared_steps():
    sch, _made = scheduler(size=4, delay=0.002)
    prompts = [[5, 6, 40], [7, 50], [9, 9, 9, 30], [1, 55]]
    got = in_threads(lambda p: sch.submit(Request(p, max_tokens=100)), prompts)
    for (sample, _), p in zip(got, prompts, strict=True):
        assert sample.tokens == counting(p[-1]) and sample.finish_reason == "stop"
        assert sample.text == " ".join(map(str, counting(p[-1])))
    longest = max(len(counting(p[-1])) for p in prompts)
    total = sum(len(counting(p[-1])) for p in prompts)
    assert sch.admitted == 4 and sch.steps < total  # decoded side by side, not one after another
    assert sch.steps <= longest + 5


def test_a_call_that_arrives_later_joins_the_running_batch_and_can_finish_first():
    sch, _ = scheduler(size=4, delay=0.01)
    order: list[str] = []

    def call(name, prompt, n):
        sample, _ = sch.submit(Request(prompt, max_tokens=n))
        order.append(name)
        return sample

    long = threading.Thread(target=call, args=("long", [2, 3], 40))
    long.start()
    time.sleep(0.1)  # the long one is decoding by now
    short = call("short", [8, 9], 3)
    long.join(timeout=20)
    assert order == ["short", "long"] and short.tokens == [10, 11, 12] and short.finish_reason == "length"


def test_max_tokens_and_stop_strings_end_a_sequence():
    sch, _ = scheduler()
    sample, _ = sch.submit(Request([1, 2], max_tokens=5))
    assert sample.tokens == [3, 4, 5, 6, 7] and sample.finish_reason == "length"
    sample, _ = sch.submit(Request([1, 20], max_tokens=50, stop=["23"]))
    assert sample.text == "21 22 " and sample.finish_reason == "stop"


def test_a_shared_prompt_prefix_is_evaluated_once():
    sch, made = scheduler(size=4, delay=0.01)
    system = list(range(1, 31))  # 30 tokens every prompt starts with
    prompts = [[*system, 40], [*system, 41], [*system, 42]]
    got = in_threads(lambda p: sch.submit(Request(p, max_tokens=4)), prompts)
    reused = sorted(r for _, r in got)
    assert reused == [0, 30, 30]  # the second and third share the first's cells
    assert [s.tokens for s, _ in got] == [counting(p[-1], 4) for p in prompts]
    generated = 3 * 4 - 3  # the last sampled token of each is never decoded
    assert made[0].evaluated == 31 + 1 + 1 + generated


def test_the_next_step_of_a_chain_takes_over_the_cells_of_the_previous_call():
    sch, made = scheduler(size=2)
    first, _ = sch.submit(Request([3, 4, 5] + [60] * 20, max_tokens=2))  # writes 61, 62
    continued = [3, 4, 5] + [60] * 20 + [61, 62, 7, 8]
    second, reused = sch.submit(Request(continued, max_tokens=2))
    assert first.tokens == [61, 62] and second.tokens == [9, 10]
    assert reused == 24  # the prompt and the first answer's decoded token were already in the cells
    assert made[0].cells[0][:27] == continued


def test_kept_cells_are_evicted_oldest_first_when_places_run_out():
    sch, _made = scheduler(size=2, n_cells=4096)
    a = [10] * 20 + [1]
    b = [20] * 20 + [2]
    c = [30] * 20 + [3]
    for p in (a, b, c):  # three unrelated calls: the third evicts the first
        sch.submit(Request(p, max_tokens=3))
    assert len(sch._kept) == 2 and [k.request.prompt for k in sch._kept] == [b, c]
    _, reused = sch.submit(Request([*b, 3, 4, 9], max_tokens=1))  # b is still there to continue
    assert reused >= 21


def test_a_call_bigger_than_the_context_rebuilds_it_larger():
    sch, made = scheduler(size=2, n_cells=256)
    sample, _ = sch.submit(Request([1] * 300 + [5], max_tokens=10))
    assert sample.tokens == counting(5, 10) and len(made) == 2 and made[0].closed
    assert made[1].n_ctx >= 311


def test_calls_beyond_the_cells_wait_for_room_instead_of_overrunning():
    sch, made = scheduler(size=4, n_cells=300, delay=0.002)
    prompts = [[k] * 50 + [k + 1] for k in range(1, 5)]  # 51 + 100 cells reserved each: two fit at once
    got = in_threads(lambda p: sch.submit(Request(p, max_tokens=100)), prompts)
    assert all(s.tokens == counting(p[-1], 100) for (s, _), p in zip(got, prompts, strict=True))
    assert len(made) == 1  # FakeDecoder.decode asserts the cells in use never exceed n_ctx


def test_a_failed_step_fails_its_calls_and_the_next_call_starts_clean():
    sch, made = scheduler(size=4, delay=0.005, fail_at=3)
    got = in_threads(lambda p: sch.submit(Request(p, max_tokens=20)), [[1, 2], [3, 4]])
    assert all(isinstance(r, RuntimeError) and "llama_decode" in str(r) for r in got)
    made[0].fail_at = None
    sample, _ = sch.submit(Request([7, 8], max_tokens=2))
    assert isinstance(sample, Sample) and sample.tokens == [9, 10]


def test_an_empty_prompt_is_refused():
    sch, _ = scheduler()
    with pytest.raises(ValueError, match="empty"):
        sch.submit(Request([], max_tokens=2))


def test_cells_count_the_shared_prefix_once():
    a = Request([1, 2, 3, 4, 5], max_tokens=10)
    b = Request([1, 2, 3, 9], max_tokens=20)
    assert shared_prefix([a.prompt, b.prompt]) == 3
    assert shared_prefix([a.prompt, a.prompt]) == 5 and shared_prefix([a.prompt, [1, 2]]) == 2
    assert cells([a, b]) == 256
    assert cells([Request(list(range(300)), max_tokens=10)] * 2) == 512  # 300 + 2 x 10 + 1 -> 512


def test_bad_slot_counts_are_clear_errors(monkeypatch):
    from orchestrator.errors import ConfigError
    from orchestrator.models import get_model

    with pytest.raises(ConfigError, match="slots must be at least 1, not 0"):
        get_model("local/smollm2-135m", slots=0)
    monkeypatch.setenv("REASON_LOCAL_SLOTS", "eight")
    with pytest.raises(ConfigError, match="REASON_LOCAL_SLOTS must be a whole number of at least 1, not 'eight'"):
        get_model("local/smollm2-135m")
    monkeypatch.delenv("REASON_LOCAL_SLOTS")
    for var in ("REASON_LOCAL_THREADS", "REASON_LOCAL_N_CTX"):
        monkeypatch.setenv(var, "0")
        with pytest.raises(ConfigError, match=f"{var} must be a whole number of at least 1, not '0'"):
            get_model("local/smollm2-135m")
        monkeypatch.setenv(var, "4k")
        with pytest.raises(ConfigError, match=f"{var} must be a whole number"):
            get_model("local/smollm2-135m")
        monkeypatch.delenv(var)
    monkeypatch.setenv("REASON_LOCAL_N_CTX", "2048")
    assert get_model("local/smollm2-135m").context_window == 2048
    monkeypatch.setenv("REASON_LOCAL_SLOTS", "3")
    assert get_model("local/smollm2-135m").slots == 3 and get_model("local/smollm2-135m", slots=2).slots == 2
