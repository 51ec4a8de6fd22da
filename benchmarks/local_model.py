"""The embedded model through our model layer vs raw llama-cpp-python, and KV-cache prefix reuse.

    python benchmarks/local_model.py throughput [--model smollm2-135m] [--runs 3] [--tokens 128]
    python benchmarks/local_model.py prefix [--model smollm2-135m]
    python benchmarks/local_model.py batch [--model smollm2-135m] [--samples 8] [--tokens 128] [--runs 2]
    python benchmarks/local_model.py slots [--model smollm2-135m] [--samples 8] [--tokens 128] [--runs 2]
    python benchmarks/local_model.py stats [--model qwen2.5-coder-1.5b] [--runs 3]

`throughput` decodes the same prompt greedily with both, interleaved (raw, ours, raw, ours, ...) so that
background load hits both alike, and prints tokens/s and the ratio (target >= 0.95). `prefix` runs one
reasoning chain and prints, per model call, the prompt tokens and how many llama.cpp really evaluated.
`batch` draws N samples of one prompt at temperature 0.7, one call after another vs decoded together
(`LocalModel.sample`), interleaved, and prints generated tokens per second of each and the speed-up.
`slots` asks N different questions (the first N of the pinned GSM8K sample, seed 0), greedily: one call
after another on a one-slot model vs from N threads at once on `LocalModel(slots=N)` (continuous
batching), interleaved, and prints generated tokens per second, prompt tokens evaluated, and the speed-up.
`stats` times what the batch decoders add per generated token for token statistics
(`orchestrator.confidence.token_stats`, over the model's whole vocabulary) beside the sampler itself
(`local_batch.pick` at 0.4), on one real logits row, 2,000 calls each, median of runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from orchestrator.models.local import LocalModel

PROMPT = [{"role": "user", "content": "Explain, step by step, how to compute 17 * 24 without a calculator."}]


def throughput(model: str, runs: int, tokens: int) -> None:
    ours = LocalModel(f"local/{model}")
    llm, _ = ours.llama()
    raw_rates, our_rates = [], []
    for _ in range(runs):
        llm.reset()  # no prefix reuse for either side: both evaluate the full prompt
        t = time.perf_counter()
        out = llm.create_chat_completion(messages=PROMPT, max_tokens=tokens, temperature=0.0)
        raw_rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - t))
        llm.reset()
        c = ours.complete(PROMPT, max_tokens=tokens, temperature=0.0)
        our_rates.append(c.usage.completion_tokens / c.seconds)
    raw, our = statistics.median(raw_rates), statistics.median(our_rates)
    print(f"model={model} runs={runs} max_tokens={tokens}")
    print(f"raw llama-cpp-python: {raw:.2f} tok/s (median; {', '.join(f'{r:.2f}' for r in raw_rates)})")
    print(f"reason model layer:   {our:.2f} tok/s (median; {', '.join(f'{r:.2f}' for r in our_rates)})")
    print(f"ratio ours/raw: {our / raw:.3f} (target >= 0.95)")


def prefix(model: str) -> None:
    from orchestrator import Budget, Reasoner, ReasonConfig

    q = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
         "her friends every day with four. She sells the remainder at the farmers' market daily for $2 per "
         "fresh duck egg. How much in dollars does she make every day at the farmers' market?")
    config = ReasonConfig(plan=True, max_attempts=1, max_tokens_per_call=512)
    result = Reasoner(f"local/{model}", config=config, budget=Budget(max_calls=8)).solve(q)
    print(f"model={model} stop={result.stop_reason} answer={result.answer}")
    print("| step | kind | prompt tokens | reused from KV cache | evaluated |")
    print("|---|---|---|---|---|")
    total_prompt = total_eval = 0
    for step in result.steps:
        for call in step.calls:
            evaluated = call.prompt_tokens - call.cached_tokens
            total_prompt += call.prompt_tokens
            total_eval += evaluated
            print(f"| {step.index} | {step.kind} | {call.prompt_tokens} | {call.cached_tokens} | {evaluated} |")
    print(f"total prompt tokens {total_prompt}, evaluated {total_eval} "
          f"({100 * total_eval / max(1, total_prompt):.0f}%)")


def batch(model: str, samples: int, tokens: int, runs: int) -> None:
    ours = LocalModel(f"local/{model}")
    llm, _ = ours.llama()
    seeds = list(range(samples))
    seq_rates, batch_rates = [], []
    for _ in range(runs):
        llm.reset()
        t = time.perf_counter()
        done = [ours.complete(PROMPT, max_tokens=tokens, temperature=0.7, seed=s) for s in seeds]
        seq_rates.append(sum(c.usage.completion_tokens for c in done) / (time.perf_counter() - t))
        t = time.perf_counter()
        drawn = ours.sample(PROMPT, seeds, max_tokens=tokens, temperature=0.7)
        batch_rates.append(sum(c.usage.completion_tokens for c in drawn) / (time.perf_counter() - t))
    seq, bat = statistics.median(seq_rates), statistics.median(batch_rates)
    print(f"model={model} samples={samples} max_tokens={tokens} runs={runs} temperature=0.7")
    print(f"one after another: {seq:.2f} generated tok/s (median; {', '.join(f'{r:.2f}' for r in seq_rates)})")
    print(f"one batch:         {bat:.2f} generated tok/s (median; {', '.join(f'{r:.2f}' for r in batch_rates)})")
    print(f"speed-up: {bat / seq:.2f}x")


def slots(model: str, n: int, tokens: int, runs: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.bench.datasets import load_dataset

    system = {"role": "system", "content": "Solve the problem step by step. End with 'Answer: <number>'."}
    asks = [[system, {"role": "user", "content": p.question}] for p in load_dataset("gsm8k", limit=n, seed=0)]
    one = LocalModel(f"local/{model}")
    many = LocalModel(f"local/{model}", slots=n)
    seq_rates, slot_rates, evaluated = [], [], []
    for _ in range(runs):
        one.llama()[0].reset()
        t = time.perf_counter()
        done = [one.complete(m, max_tokens=tokens, temperature=0.0) for m in asks]
        seq_rates.append(sum(c.usage.completion_tokens for c in done) / (time.perf_counter() - t))
        many.close()  # a fresh context: no cells kept from the last run
        t = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            got = list(pool.map(lambda m: many.complete(m, max_tokens=tokens, temperature=0.0), asks))
        slot_rates.append(sum(c.usage.completion_tokens for c in got) / (time.perf_counter() - t))
        evaluated.append(sum(c.usage.prompt_tokens - c.usage.cached_tokens for c in got))
    seq, par = statistics.median(seq_rates), statistics.median(slot_rates)
    prompt = sum(c.usage.prompt_tokens for c in got)
    print(f"model={model} questions={n} max_tokens={tokens} runs={runs} greedy")
    print(f"one after another: {seq:.2f} generated tok/s (median; {', '.join(f'{r:.2f}' for r in seq_rates)})")
    print(f"{n} slots at once:  {par:.2f} generated tok/s (median; {', '.join(f'{r:.2f}' for r in slot_rates)})")
    print(f"prompt tokens {prompt}, evaluated with slots {evaluated[-1]} (the shared system prompt once)")
    print(f"speed-up: {par / seq:.2f}x")


def stats(model: str, runs: int) -> None:
    from orchestrator.confidence import token_stats
    from orchestrator.models.local_batch import BatchDecoder, pick

    import numpy as np

    ours = LocalModel(f"local/{model}")
    llm, lock = ours.llama()
    prompt = ours._prompt(llm, PROMPT)
    with lock:
        decoder = BatchDecoder(llm, 1, len(prompt) + 16, ours.n_threads)
        row = decoder.decode([(t, i, [0], i == len(prompt) - 1) for i, t in enumerate(prompt)])[0]
        decoder.close()
    rng, calls = np.random.default_rng(0), 2000
    picks, adds = [], []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(calls):
            pick(row, 0.4, rng)
        picks.append((time.perf_counter() - t) / calls * 1e3)
        t = time.perf_counter()
        for _ in range(calls):
            token_stats(row, 0)
        adds.append((time.perf_counter() - t) / calls * 1e3)
    print(f"model={model} vocabulary={row.shape[0]} calls={calls} runs={runs}")
    print(f"sampler (pick at 0.4): {statistics.median(picks):.3f} ms a token (median)")
    print(f"token statistics:      {statistics.median(adds):.3f} ms a token (median)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["throughput", "prefix", "batch", "slots", "stats"])
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    args = ap.parse_args()
    if args.what == "throughput":
        throughput(args.model, args.runs, args.tokens)
    elif args.what == "batch":
        batch(args.model, args.samples, args.tokens, args.runs)
    elif args.what == "slots":
        slots(args.model, args.samples, args.tokens, args.runs)
    elif args.what == "stats":
        stats(args.model, args.runs)
    else:
        prefix(args.model)


if __name__ == "__main__":
    main()
