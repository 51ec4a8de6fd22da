"""`crosscheck`, the default: answer cheaply, check with a program our sandbox runs, spend more only on disagreement.

References: program-aided reasoning (PAL, Gao et al. 2022; Program of Thoughts, Chen et al. 2022): compute,
don't narrate; self-consistency (Wang et al. 2022) with adaptive stopping (Aggarwal et al. 2023): stop
sampling once the answer is settled; Snell et al. 2024: spend test-time compute per question; Huang et al.
2024: a model reviewing itself does not correct its reasoning, external feedback such as code execution does.

Each round draws two independent solutions of the bare question: a prose one (the question as the only
message, as `plain` asks it) and a program (the question solved as one short Python program that our
sandbox runs; what it prints is its answer; a program that fails is shown its error once). Round one is
greedy, later rounds sample at `temperature`. Our code, never the model, groups the answers by meaning and
stops after a round in which one answer has two votes and leads every other by `margin`: a prose answer and
a program that agree end the solve after two calls. Otherwise rounds go on until `rounds` have run or the budget is
spent, and the answer with the most votes wins (a tie goes to the answer that both a program and a prose
solution support, then to the earliest).

The answer is verified when independent evidence supports it: a program and a prose solution agree on it,
or at least three samples do and they are a majority. Anything less is reported unverified, with the tally
it rests on (`details['evidence']`). Without a sandbox (tools off, bubblewrap missing), or for answers a
program cannot produce (a choice letter, code), every sample is a prose one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from orchestrator.answers import group
from orchestrator.kinds import StepKind, StopReason, is_budget
from orchestrator.lifecycle import lifecycle
from orchestrator.programs import run_program
from orchestrator.run import Candidate, Run
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.strategies.options import CrosscheckOptions
from orchestrator.strategies.plain import answer_once
from orchestrator.strategies.sampling import Projection, run_samples
from orchestrator.trajectory import Step

PROGRAM_KINDS = ("math", "text")  # answers a program's printed result can stand for (a number, a word)


@dataclass
class Vote:
    """One sample's answer: its label (grouped by meaning), where it came from, and the candidate."""

    label: str | None
    source: str  # 'prose' | 'program'
    run: Run


def program_once(ctx: StrategyContext, sample: int, **overrides: Any) -> Run:
    """Solve the bare question as one Python program, run it in the sandbox, read what it prints last.
    A program that fails or prints nothing is shown its error and may be corrected once."""
    config = ctx.config.model_copy(update=overrides) if overrides else ctx.config
    assert ctx.make_sandbox is not None
    sandbox = ctx.make_sandbox()
    run = Run(question=ctx.question, kind=ctx.kind, model=ctx.model, config=config,
              trajectory=ctx.trajectory(sample, ctx.sample_header(config, "program")), ledger=ctx.ledger,
              budget=ctx.budget, sandbox=sandbox, on_event=ctx.on_event, sample=sample)
    try:
        with lifecycle(run):
            instruction = run.render("program")
            for _ in range(2):
                text, call = run.ask(instruction, "program", max_tokens=min(640, config.max_tokens_per_call))
                step = Step(kind=StepKind.PROGRAM, text=text.strip(), instruction=instruction, calls=[call])
                found = run_program(run, step, text, "program")
                if step.code is None:
                    step.error = "the reply had no ```python code block"
                if found is not None:
                    step.answer, step.normalized = found.text, found.normalized
                    run.add(step)
                    run.candidates.append(Candidate(found.text, found.normalized, None, None, 0))
                    run.stop(StopReason.ANSWERED)
                    return run
                run.add(step)
                instruction = run.render("program_error", error=step.error)
            run.stop(StopReason.NO_ANSWER)
    finally:
        sandbox.close()
    return run


def settled(votes: list[Vote], margin: int) -> bool:
    """Whether one answer has at least two votes and leads every other by `margin`."""
    counts = Counter(v.label for v in votes if v.label is not None).most_common(2)
    if not counts or counts[0][1] < 2:
        return False
    runner_up = counts[1][1] if len(counts) > 1 else 0
    return counts[0][1] - runner_up >= margin


def winner(votes: list[Vote]) -> str | None:
    """The label with the most votes; a tie goes to one both a program and prose support, then the earliest."""
    labels = [v.label for v in votes if v.label is not None]
    if not labels:
        return None
    counts = Counter(labels)
    both = {v.label for v in votes if v.source == "program"} & {v.label for v in votes if v.source == "prose"}
    return max(counts, key=lambda label: (counts[label], label in both, -labels.index(label)))


def evidence(votes: list[Vote], chosen: str | None) -> dict[str, Any]:
    """What the answer rests on: its supporters by source, the others, whether that counts as verified, and a
    one-line summary ('a program and a prose solution agree', '3 of 4 samples', ...)."""
    answered = [v for v in votes if v.label is not None]
    backing = [v for v in answered if v.label == chosen]
    programs = sum(v.source == "program" for v in backing)
    prose = len(backing) - programs
    majority = 2 * len(backing) > len(answered)
    agree = programs >= 1 and prose >= 1 and majority
    verified = chosen is not None and (agree or (len(backing) >= 3 and majority))
    if chosen is None:
        summary = f"no sample answered ({len(votes)} drawn)"
    elif agree and len(answered) == 2:
        summary = "a program and a prose solution agree"
    else:
        parts = [f"{programs} program{'s' if programs > 1 else ''}"] if programs else []
        parts += [f"{prose} prose"] if prose else []
        summary = f"{len(backing)} of {len(answered)} answers ({', '.join(parts)})"
        if len(answered) < len(votes):
            summary += f"; {len(votes) - len(answered)} without an answer"
    return {"summary": summary, "verified": verified, "programs": programs, "prose": prose,
            "answered": len(answered), "drawn": len(votes)}


def solve(ctx: StrategyContext) -> Outcome:
    """Rounds of a prose solution and a program until one answer is settled, the budget is spent, or
    `rounds` have run."""
    o = ctx.options_as(CrosscheckOptions)
    with_programs = o.programs and ctx.make_sandbox is not None and ctx.kind in PROGRAM_KINDS
    temperature = o.temperature if o.temperature is not None else ctx.model.sample_temperature
    plan = [("prose" if not with_programs or i % 2 == 0 else "program") for i in range(o.rounds * 2)]
    if not with_programs:
        plan = plan[: o.rounds + 1]  # prose alone: one sample a round, and one more so two can agree
    seen: list[str] = []
    votes: list[Vote] = []

    def draw(index: int, **_: Any) -> Run:
        greedy = index < (2 if with_programs else 1)
        if plan[index] == "program":
            t = 0.0 if greedy else temperature
            return program_once(ctx, index, temperature=t, retry_temperature=t)
        return answer_once(ctx, index) if greedy else answer_once(ctx, index, temperature=temperature)

    def decide(run: Run) -> StopReason | None:
        label = group(run.final.normalized if run.final else None, seen, ctx.kind)
        votes.append(Vote(label, plan[run.sample], run))
        if with_programs and len(votes) % 2:
            return None  # decide on whole rounds: the round's other solution may still change the lead
        return StopReason.CONSENSUS if settled(votes, o.margin) else None

    def wanted() -> int:
        return 2 if with_programs and len(votes) % 2 == 0 else 1  # a round's two solutions run together

    sampled = run_samples(ctx, list(range(len(plan))), decide, Projection(ctx, first_calls=1.0),
                          wanted=wanted, runner=draw)
    chosen = winner(votes)
    found = evidence(votes, chosen)
    backing = [v.run.final for v in votes if v.label == chosen and v.run.final is not None]
    answer = None
    if backing:
        first = backing[0]
        answer = Candidate(first.answer, first.normalized, None, True if found["verified"] else None, 0)
    runs = sorted((v.run for v in votes), key=lambda r: r.sample)
    details = {
        "evidence": found,
        "votes": dict(Counter(v.label for v in votes if v.label is not None)),
        "samples": [{"sample": v.run.sample, "source": v.source, "answer": v.run.final.answer if v.run.final
                     else None, "label": v.label, "stop_reason": v.run.stop_reason} for v in votes],
        "programs": with_programs,
    }
    stop = sampled.stop_reason  # consensus, limit (every round ran) or budget_<resource>
    if answer is None and not is_budget(stop):
        stop = StopReason.NO_ANSWER
    return Outcome(answer=answer, stop_reason=stop, runs=runs, samples_used=len(votes),
                   samples_allowed=len(plan), details=details)
