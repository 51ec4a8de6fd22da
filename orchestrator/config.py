"""Typed configuration of a reasoning run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReasonConfig(BaseModel):
    """How the state machine reasons. Budgets (tokens, $, seconds, calls) live in `Budget`."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(20, ge=1, le=1000)
    """Step budget shown to the model and counted down by us (the Dynamic-CoT convention starts at 20)."""
    max_extra_steps: int = Field(10, ge=0)
    """How many more steps the model may ask for in total (`I need N more steps`)."""
    reflect_every: int = Field(3, ge=1)
    """Reflect after this many think calls without a reflection (also after errors and before answering)."""
    reward_high: float = Field(0.8, ge=0, le=1)
    """A reward at or above this continues (or accepts the answer)."""
    reward_low: float = Field(0.5, ge=0, le=1)
    """A reward below this backtracks (mid-chain) or fails the attempt (final); in between, adjust."""
    max_attempts: int = Field(2, ge=1, le=20)
    """Attempts per run; a failed attempt leaves a lesson for the next one (Reflexion)."""
    max_backtracks: int = Field(2, ge=0)
    """Backtracks allowed within one attempt before the attempt is declared failed."""
    max_adjusts: int = Field(2, ge=0)
    """Middling rewards on a proposed answer allowed per attempt; one more fails the attempt (a small model
    can otherwise re-propose the same answer and be told to adjust until the step budget runs out)."""
    max_format_errors: int = Field(3, ge=1)
    """Consecutive unreadable replies tolerated before the run stops with `format_errors`."""
    plan: bool = False
    """Start each attempt with a plan step that restates the facts and the question (off by default: on the
    1.5B model it doubled the time per question)."""
    reflect: bool = True
    """Reflect with a reward (off: the chain answers as soon as it has an answer)."""
    verify: bool = True
    """Verify a well-rewarded answer before accepting it."""
    verify_by: Literal["auto", "judge", "program", "resolve"] = "auto"
    """How `verify` checks an answer. `judge`: the model reviews its chain and gives a verdict. `program` (math,
    with tools): the bare question is solved again as a program that we run, and our code compares its result.
    `resolve`: the bare question is asked again `resolve_samples` times at `retry_temperature`, each time as a
    plain question that sees none of the chain, and our code groups the answers by meaning: the answer is
    verified when it has more votes than any other (the chain's own answer counts as one), and every re-solve
    joins the final vote. `auto`: `program` where it can run, else `judge`. (A model reviewing its own chain
    rarely finds its mistake: the 1.5B model's judge passed all 17 of its wrong final answers on 50 GSM8K
    problems.)"""
    resolve_samples: int = Field(4, ge=1, le=32)
    """Independent re-solves per `resolve` verification."""
    tools: bool | None = None
    """Let the model run Python in the sandbox (mid-thought, and to solve or check as a program). None: on
    wherever the sandbox can start (for `local`, bubblewrap is installed), else off with one notice saying how
    to install it."""
    native_tools: bool = True
    """Offer the interpreter as a native tool (function calling) to models whose provider has it; off, or
    for models without it, the model writes ```python fences that we run (every model can do that)."""
    sandbox: str = "local"
    """Sandbox backend for tools: `local` (bubblewrap), `local-unsafe` (limits only) or `e2b`."""
    temperature: float | None = None
    """Sampling temperature of the first attempt (None: the backend's default; local models: greedy)."""
    retry_temperature: float = 0.7
    """Temperature of later attempts, so that a retry does not repeat the same chain."""
    max_tokens_per_call: int = Field(1024, ge=16)
    """Completion cap of every call (`reason --max-tokens-per-call`): think calls may use all of it; reflection,
    verification and lessons ask for less (256, 640 and 128 at most)."""
    seed: int | None = None
    """Sampling seed passed to backends that accept one."""
    kind: str = "auto"
    """Answer kind: `auto` (guessed from the question), `math`, `choice`, `code` or `text`."""
    prompts_dir: str | None = None
    """A folder of `.j2` templates overriding the built-in prompts file by file."""
    system: str | None = None
    """Extra system instructions appended to the built-in system prompt."""
