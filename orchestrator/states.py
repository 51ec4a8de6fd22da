"""The work of each state: small functions that make at most one model call and return one `Step`.

Model mistakes (unreadable replies, failing code) become steps shown back to the model; provider and
programming errors propagate to the loop in `orchestrator.machine`.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from orchestrator import parsing
from orchestrator.answers import extract_answer, group, same_answer
from orchestrator.kinds import StepKind, StopReason
from orchestrator.programs import run_program
from orchestrator.run import Candidate, Run
from orchestrator.trajectory import Step

ANSWER_HINTS = {"math": "<number>", "choice": "<letter>", "code": "<the code>", "game24": "<expression>"}


def _format_error(run: Run, kind: str, instruction: str, text: str, call, problem: str, expected: str) -> Step:
    feedback = run.render("format_error", problem=problem, expected=expected)
    return Step(kind=StepKind.FORMAT_ERROR, text=text, instruction=instruction, calls=[call],
                error=f"{kind}: {problem}", observation=feedback)


def _retrying(run: Run) -> str | None:
    """The complaint about the previous, unreadable reply, if the last step was one."""
    last = run.live_steps[-1:]
    if last and last[0].kind == StepKind.FORMAT_ERROR and last[0].observation:
        return last[0].observation
    return None


def _with_feedback(run: Run, instruction: str) -> str:
    """Prefix the instruction with the complaint about the previous, unreadable reply, if any."""
    complaint = _retrying(run)
    return f"{complaint}\n{instruction}" if complaint else instruction


def plan(run: Run) -> Step:
    instruction = run.render("plan")
    text, call = run.ask(instruction, "plan", max_tokens=min(384, run.config.max_tokens_per_call))
    return Step(kind=StepKind.PLAN, text=text.strip(), instruction=instruction, calls=[call])


def think(run: Run) -> Step:
    first = not any(s.kind == StepKind.THINK for s in run.live_steps)
    instruction = run.render(
        "think", first=first, steps_left=run.steps_left, advice=run.advice, backtrack=run.backtracked,
        answer_hint=ANSWER_HINTS.get(run.kind, "<answer>"),
    )
    instruction = _with_feedback(run, instruction)
    text, call = run.ask(instruction, "think", max_tokens=run.config.max_tokens_per_call, tools=True)
    run.advice, run.backtracked = None, False
    run.thinks_since_reflect += 1
    step = Step(kind=StepKind.THINK, text=text.strip(), instruction=instruction, calls=[call])
    native = _native_call(call.tool_calls)
    if isinstance(native, str):
        run.thinks_since_reflect -= 1
        return _format_error(run, "think", instruction, text, call, native,
                             'Call the python tool with one argument, "code": the Python source to run.')
    if not step.text and native is None:
        run.thinks_since_reflect -= 1
        return _format_error(run, "think", instruction, text, call, "the reply was empty",
                             "Write the next step of your solution.")
    code = _code(run, step.text) if native is None else None
    if native is not None:
        step.tool_call_id, step.code = native
    elif code is not None:
        step.code, step.text = code
    else:
        found = extract_answer(step.text, run.kind)
        if found is not None and _states_final(step.text):
            step.answer, step.normalized = found.text, found.normalized
            run.pending = step
    run.steps_left -= parsing.count_steps(step.text)
    wanted = parsing.requested_steps(step.text)
    grant = min(wanted, run.config.max_extra_steps - run.extra_steps_granted)
    if grant > 0:
        run.steps_left += grant
        run.extra_steps_granted += grant
    return step


def _states_final(text: str) -> bool:
    """Whether a think reply commits to a final answer (rather than an intermediate result)."""
    lowered = text.lower()
    return any(marker in lowered for marker in ("final answer", "\\boxed", "<answer>", "the answer is"))


def _code(run: Run, text: str) -> tuple[str, str] | None:
    """The first code block and the reply cut right after it (any imagined output is dropped)."""
    if run.sandbox is None:
        return None
    from orchestrator.tools.python_tool import extract_code_blocks

    blocks = extract_code_blocks(text)
    if not blocks:
        return None
    end = text.find("```", text.find(blocks[0]) + len(blocks[0]))
    return blocks[0], text[: end + 3] if end >= 0 else text


def _native_call(tool_calls: list[dict]) -> tuple[str, str] | str | None:
    """(call id, code) of the first native `python` call; None without one; a complaint if unreadable."""
    for call in tool_calls:
        fn = call.get("function") or {}
        if fn.get("name") != "python":
            continue
        try:
            arguments = json.loads(fn.get("arguments") or "{}")
        except json.JSONDecodeError:
            return "the arguments of your python call were not valid JSON"
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if not isinstance(code, str) or not code.strip():
            return 'your python call had no "code" argument'
        return str(call.get("id") or "call_0"), code
    return "you called a tool other than python" if tool_calls else None


def act(run: Run) -> Step:
    """Run the previous think step's code in the sandbox. The output goes back as the next user turn, or as
    the tool result of a native call (then the user turn only says how many steps are left)."""
    asked = run.live_steps[-1]
    code = asked.code or ""
    result = run.sandbox.run(code)
    run.ledger.record_tool(result.duration, "act")
    observation = result.to_observation(4000)
    instruction = run.render("observation", observation=observation, error=bool(result.error),
                             steps_left=run.steps_left, native=asked.tool_call_id is not None)
    return Step(kind=StepKind.ACT, text=observation, code=code, observation=observation, error=result.error,
                instruction=instruction, seconds=result.duration, tool_call_id=asked.tool_call_id)


def reflect(run: Run) -> Step:
    final = run.pending is not None
    # After an unreadable review, ask for the one thing missing rather than the whole review again.
    instruction = _retrying(run) or run.render("reflect", final=final)
    text, call = run.ask(instruction, "reflect", max_tokens=256)
    reward = parsing.parse_reward(text)
    if reward is None:
        return _format_error(run, "reflect", instruction, text, call, "your review had no reward line",
                             'Reply with one line "Reward: X", where X is a number from 0.0 to 1.0 '
                             "(0.8 or more: correct; below 0.5: wrong).")
    run.thinks_since_reflect = 0
    step = Step(kind=StepKind.REFLECT, text=text.strip(), instruction=instruction, calls=[call], reward=reward)
    if final:
        assert run.pending is not None
        step.answer, step.normalized = run.pending.answer, run.pending.normalized
    if run.config.reward_low <= reward < run.config.reward_high:
        run.advice = parsing.critique_of(text)
    if final:
        assert run.pending is not None
        run.pending.reward = reward
        if run.config.reward_low <= reward < run.config.reward_high:
            run.adjusts += 1
        if reward < run.config.reward_high:
            _remember(run, run.pending, verified=None)
            run.pending = None
    return step


def backtrack(run: Run) -> Step:
    """Abandon the live steps after the last one a reflection rewarded well; keep them in the file."""
    live = run.live_steps
    keep = 1 if live and live[0].kind == "plan" else 0
    for i, s in enumerate(live):
        if s.kind == StepKind.REFLECT and (s.reward or 0) >= run.config.reward_high:
            keep = i + 1
    dropped = [s.index for s in live[keep:]]
    run.trajectory.mark_abandoned(dropped)
    run.backtracks += 1
    run.backtracked = True
    run.thinks_since_reflect = 0
    return Step(kind=StepKind.BACKTRACK, text=f"abandoned steps {dropped}; resuming after step {keep}")


def verify(run: Run) -> Step:
    assert run.pending is not None and run.pending.answer is not None
    if run.verification == "program":
        return _verify_by_program(run)
    if run.verification == "resolve":
        return _verify_by_resolving(run)
    instruction = _retrying(run) or run.render("verify", answer=run.pending.answer, tools=run.sandbox is not None)
    text, call = run.ask(instruction, "verify", max_tokens=min(640, run.config.max_tokens_per_call))
    verdict = parsing.parse_verdict(text)
    if verdict is None:
        return _format_error(run, "verify", instruction, text, call, "your check had no verdict line",
                             f'Is {run.pending.answer} correct? Reply with one line: "Verdict: CORRECT" or '
                             '"Verdict: INCORRECT".')
    step = Step(kind=StepKind.VERIFY, text=text.strip(), instruction=instruction, calls=[call], verdict=verdict)
    _remember(run, run.pending, verified=verdict)
    run.pending = None
    return step


def _verify_by_program(run: Run) -> Step:
    """Solve again as a program, from the bare question, and compare what it prints with the answer.

    The program sees none of the chain (a check that reads the chain repeats its mistakes) and our code,
    not the model, compares the two results. Its result also joins the candidates: an independent solution
    is a vote. A program that fails twice leaves the answer unverified (verdict None) rather than refuted.
    """
    assert run.pending is not None and run.pending.answer is not None
    complaint = _retrying(run)
    instruction = run.render("verify_code")
    instruction = f"{complaint}\n{instruction}" if complaint else instruction
    text, call = run.ask(instruction, "verify", max_tokens=min(640, run.config.max_tokens_per_call), fresh=True)
    step = Step(kind=StepKind.VERIFY, text=text.strip(), instruction=instruction, calls=[call],
                answer=run.pending.answer, normalized=run.pending.normalized)
    computed = run_program(run, step, text, "verify")
    problem = "your reply had no ```python code block"
    if computed is not None:
        step.verdict = same_answer(computed.text, run.pending.answer, run.kind)
        verb = "matches" if step.verdict else "does not match"
        check = f"[check] the program's result {computed.text} {verb} the answer {step.answer}"
        step.observation = f"{step.observation or ''}\n{check}"
        if not step.verdict:
            run.candidates.append(Candidate(computed.text, computed.normalized, None, None, run.attempt))
    elif step.code is not None:
        problem = f"your program failed: {step.error}" if step.error else "your program printed no result"
    if step.verdict is None and not complaint:
        return _format_error(run, "verify", instruction, text, call, problem,
                             "Reply with one ```python block that computes the result and prints it.")
    _remember(run, run.pending, verified=step.verdict)
    run.pending = None
    return step


def _verify_by_resolving(run: Run) -> Step:
    """Ask the bare question again, independently, and let the answers vote (self-consistency as a check).

    The re-solves see none of the chain, so they do not inherit its misreading; our code groups their answers
    with the chain's by meaning. The chain's answer is verified when it has more votes than any other answer,
    refuted when another has more, and left unverified on a tie or when no re-solve gave an answer. Every
    re-solve's answer joins the candidates, so the final choice (`Run.best`) is a vote over all of them.
    """
    pending = run.pending
    assert pending is not None and pending.answer is not None
    n = run.config.resolve_samples
    replies = run.ask_plain(n, "verify", max_tokens=run.config.max_tokens_per_call)
    found = [extract_answer(text, run.kind) for text, _ in replies]
    answers = [f for f in found if f is not None]
    seen: list[str] = []
    votes = Counter(label for a in answers if (label := group(a.text, seen, run.kind)) is not None)
    groups = list(votes.items())  # (an answer, its votes), in order of first appearance
    ours = {text for text, _ in groups if same_answer(text, pending.answer, run.kind)}  # compared once each
    agree = sum(votes for text, votes in groups if text in ours)
    rival = max((g for g in groups if g[0] not in ours), key=lambda g: g[1], default=None)
    mine = agree + 1  # the chain's answer is a vote too
    verdict: bool | None = None
    if answers:
        verdict = True if rival is None or mine > rival[1] else False if rival[1] > mine else None
    tally = ", ".join(f"{text} x{votes}" for text, votes in groups) or "none"
    missing = n - len(answers)
    summary = f"solved again {n} times without the chain: {tally}" + (f"; no answer x{missing}" if missing else "")
    if verdict is False and rival is not None:
        outcome = f"the answer {pending.answer} has {mine} votes, {rival[0]} has {rival[1]}"
    elif verdict is True:
        outcome = f"the answer {pending.answer} has {mine} of {mine + len(answers) - agree} votes"
    else:
        outcome = f"no majority for or against the answer {pending.answer}"
    step = Step(kind=StepKind.VERIFY, text=summary, calls=[call for _, call in replies], verdict=verdict,
                answer=pending.answer, normalized=pending.normalized,
                observation=f"[check] {summary}; {outcome}")
    for a in answers:
        run.candidates.append(Candidate(a.text, a.normalized, None, None, run.attempt))
    _remember(run, pending, verified=verdict)
    run.pending = None
    return step


def _remember(run: Run, step: Step, verified: bool | None) -> None:
    assert step.answer is not None and step.normalized is not None
    run.candidates.append(Candidate(step.answer, step.normalized, step.reward, verified, run.attempt))


def lesson(run: Run) -> Step:
    """The attempt failed: ask for a lesson, keep it as data, start the next attempt if one is left."""
    last = [s for s in run.live_steps if s.kind in (StepKind.VERIFY, StepKind.REFLECT)][-1:]
    why = "the reasoning was judged wrong"
    if last and last[0].kind == StepKind.VERIFY:
        check = last[0]
        why = "verification failed"
        found = [line for line in (check.observation or "").splitlines() if line.startswith("[check] ")]
        if found and check.code:  # name the disagreement: it is the most useful thing the lesson can carry
            why = f"verification failed: solved again as a Python program, {found[-1][8:]}"
        elif found:
            why = f"verification failed: {found[-1][8:]}"
    instruction = run.render("lesson", why=why)
    text, call = run.ask(instruction, "lesson", max_tokens=128)
    learned = parsing.parse_lesson(text) or text.strip()[:400]
    step = Step(kind=StepKind.LESSON, text=learned, instruction=instruction, calls=[call], attempt=run.attempt)
    run.lessons.append(learned)
    run.retrying = run.attempt + 1 < run.config.max_attempts
    if run.retrying:
        run.attempt += 1
        run.steps_left = run.config.max_steps
        run.thinks_since_reflect = run.backtracks = run.adjusts = 0
        run.advice, run.backtracked, run.pending = None, False, None
    return step


def answer(run: Run) -> Step:
    """Settle the answer. Out of steps with nothing proposed, ask once for the answer now."""
    if run.pending is not None:
        _remember(run, run.pending, verified=None)
        run.pending = None
    if not run.candidates:
        run.stop(StopReason.STEP_LIMIT if run.steps_left <= 0 else StopReason.ANSWERED)
        instruction = "Give your final answer now, on a line \"Final answer: ...\"."
        text, call = run.ask(instruction, "answer", max_tokens=256)
        found = extract_answer(text, run.kind)
        step = Step(kind=StepKind.ANSWER, text=text.strip(), instruction=instruction, calls=[call])
        if found is not None:
            step.answer, step.normalized = found.text, found.normalized
            run.candidates.append(Candidate(found.text, found.normalized, None, None, run.attempt))
    else:
        step = Step(kind=StepKind.ANSWER, text="")
    run.final = run.best()
    if run.final is not None:
        step.answer, step.normalized, step.text = run.final.answer, run.final.normalized, run.final.answer
    step.seconds = time.monotonic() - run.started
    return step
