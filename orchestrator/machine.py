"""The reasoning state machine: one `State` enum, one `next_state` decision, one loop.

References: Dynamic chain of thought with a counted step budget; reflection with a reward in [0, 1]
(>= high: continue, between: adjust, < low: backtrack); Reflexion's verbal reinforcement (a failed attempt
leaves a lesson for the next). Our code, not the model, counts the budget and acts on the reward.
The per-state work lives in `orchestrator.states`; each function there returns one `Step`.
"""

from __future__ import annotations

from enum import StrEnum

from orchestrator import states
from orchestrator.kinds import StepKind, StopReason
from orchestrator.lifecycle import lifecycle
from orchestrator.run import Run
from orchestrator.trajectory import Step


class State(StrEnum):
    PLAN = "plan"
    THINK = "think"
    ACT = "act"
    REFLECT = "reflect"
    BACKTRACK = "backtrack"
    VERIFY = "verify"
    LESSON = "lesson"
    ANSWER = "answer"
    STOP = "stop"


HANDLERS = {
    State.PLAN: states.plan,
    State.THINK: states.think,
    State.ACT: states.act,
    State.REFLECT: states.reflect,
    State.BACKTRACK: states.backtrack,
    State.VERIFY: states.verify,
    State.LESSON: states.lesson,
    State.ANSWER: states.answer,
}


def _failed(run: Run) -> State:
    """An attempt failed: write a lesson for the next attempt, or, with none left, settle the answer (a lesson
    nobody reads is only cost)."""
    return State.LESSON if run.attempt + 1 < run.config.max_attempts else State.ANSWER


def _after_reward(run: Run, step: Step) -> State:
    cfg, reward = run.config, step.reward if step.reward is not None else 0.0
    if step.answer is not None:  # a reflection on a proposed final answer
        if reward >= cfg.reward_high:
            return State.VERIFY if cfg.verify and run.can_verify else State.ANSWER
        if reward >= cfg.reward_low and run.adjusts <= cfg.max_adjusts:
            return State.THINK  # adjust: the critique becomes advice for the next think step
        return _failed(run)
    if reward >= cfg.reward_low:
        return State.THINK
    return State.BACKTRACK if run.backtracks < cfg.max_backtracks else _failed(run)


def next_state(state: State, step: Step, run: Run) -> State:
    """The single transition function. `step` is what `state` just produced."""
    if step.kind == StepKind.FORMAT_ERROR:
        return State.STOP if run.format_errors >= run.config.max_format_errors else state
    if state == State.PLAN:
        return State.THINK
    if state == State.THINK:
        if step.code:
            return State.ACT
        if step.answer is not None:
            return State.REFLECT if run.config.reflect else State.ANSWER
        if run.steps_left <= 0:
            return State.ANSWER  # out of steps: the answer state asks for an answer now
        if run.config.reflect and run.thinks_since_reflect >= run.config.reflect_every:
            return State.REFLECT
        return State.THINK
    if state == State.ACT:
        return State.REFLECT if step.error and run.config.reflect else State.THINK
    if state == State.REFLECT:
        return _after_reward(run, step)
    if state == State.BACKTRACK:
        return State.THINK
    if state == State.VERIFY:
        return _failed(run) if step.verdict is False else State.ANSWER  # None: could not be checked
    if state == State.LESSON:
        if not run.retrying:
            return State.ANSWER
        return State.PLAN if run.config.plan else State.THINK
    return State.STOP


def run_machine(run: Run) -> Run:
    """Drive `run` from PLAN to STOP. The trajectory is on disk at every step, whatever happens; how an
    exception ends it (a budget stop, a chain that outgrew the context window, an error) is `lifecycle`'s."""
    state = State.PLAN if run.config.plan else State.THINK
    with lifecycle(run):
        while state != State.STOP:
            if run.transitions >= run.max_transitions:
                run.stop(StopReason.STEP_LIMIT)
                break
            run.transitions += 1
            step = run.add(HANDLERS[state](run))
            state = next_state(state, step, run)
            if state == State.STOP and run.stop_reason is None:
                run.stop(StopReason.FORMAT_ERRORS if step.kind == StepKind.FORMAT_ERROR else StopReason.ANSWERED)
    return run
