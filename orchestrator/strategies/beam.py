"""`beam`: ToT-style beam search over think steps scored by a reflection reward, with backtracking.

Reference: Yao et al. 2023 (ToT, BFS over partial solutions scored by the model). A node is one think step
continuing its parent's partial solution, plus the reflection whose reward scores it; each node has its own
`Run` (the state functions `think`, `reflect`, `verify` drive it) holding its path's steps as the prompt.
A level expands each of the `width` best open nodes `branch` times: the first child of a node at the run's
own temperature, as `chain` decodes (greedy on a local model), the others sampled at `temperature` with a
distinct seed each (a node expanded again after a back-off gets sampled children only); children scoring at
least `reward_low` form the next level, best first, the `width` best being expanded next and the rest kept
as alternates. If no child of a level is viable, the search backs off: the
frontier is abandoned and the alternates of that level (failing those, of the level before, and so on up
to the question itself) are expanded instead, at most `max_backoffs` times. A child proposing a final
answer with a reward of at least `reward_high` is accepted, after the verify step when verification is on
(a failed verification abandons it and the search goes on).

All expanded nodes' steps go to one trajectory as they are expanded; pruned and refuted nodes are marked
abandoned as they are dropped, and at the end every node off the path to the answer is. `details['tree']`
lists the nodes. Tools are off inside the beam (branches would need a sandbox session each).
Stop reasons: verified / answered (an accepted answer), limit (max_depth, max_nodes or max_backoffs reached;
the best answer seen is returned), budget_<resource>.
Options (`BeamOptions` in `orchestrator.strategies.options`, with their defaults): width, branch, max_depth,
max_nodes (width * branch * max_depth unless set), max_backoffs, temperature (as for `vote`), sample_first.
The first child is not sampled because under a budget that pays for one child the beam is that child, which
should then be what `chain` would write.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from orchestrator import states
from orchestrator.answers import extract_answer
from orchestrator.errors import BudgetExceeded, ContextLengthExceeded
from orchestrator.kinds import StepKind, StopReason, budget_stop
from orchestrator.lifecycle import lifecycle, stop_reason
from orchestrator.run import Candidate, Run
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.strategies.options import BeamOptions
from orchestrator.trajectory import Step, Trajectory


@dataclass
class Node:
    """One expansion: its steps (think, reflect, maybe verify), its score and what it proposed."""

    id: int
    parent: Node | None
    depth: int
    run: Run
    steps: list[Step] = field(default_factory=list)
    score: float = 1.0
    candidate: Candidate | None = None
    abandoned: bool = False
    stopped: StopReason | None = None  # budget_<resource> when the budget ran out inside this node

    def path(self) -> list[Step]:
        """The steps from the question to this node, the prompt of its children."""
        return (self.parent.path() if self.parent else []) + self.steps

    def to_dict(self) -> dict[str, Any]:
        """The node as a row of `details['tree']`."""
        return {"id": self.id, "parent": self.parent.id if self.parent else None, "depth": self.depth,
                "score": self.score, "answer": self.candidate.answer if self.candidate else None,
                "verified": self.candidate.verified if self.candidate else None,
                "steps": [s.index for s in self.steps], "abandoned": self.abandoned}


class Beam:
    """The search state of one solve: the tree, the trajectory it is written to, the settings."""

    def __init__(self, ctx: StrategyContext) -> None:
        o = ctx.options_as(BeamOptions)
        self.ctx = ctx
        self.width, self.branch, self.max_depth, self.max_backoffs = o.width, o.branch, o.max_depth, o.max_backoffs
        self.max_nodes = o.max_nodes or self.width * self.branch * self.max_depth
        t = ctx.model.sample_temperature if o.temperature is None else o.temperature
        self.config = ctx.config.model_copy(update={"temperature": t, "retry_temperature": t, "plan": False})
        self.own = ctx.config.model_copy(update={"plan": False})  # a node's first child: the run's temperature
        self.sample_first = o.sample_first
        self.expanded: set[int] = set()  # nodes whose first child was decoded at the run's temperature
        settings = {"width": self.width, "branch": self.branch, "max_depth": self.max_depth}
        self.tree = Run(
            question=ctx.question, kind=ctx.kind, model=ctx.model, config=self.config, ledger=ctx.ledger,
            trajectory=ctx.trajectory(0, {"beam": settings}), budget=ctx.budget, on_event=ctx.on_event,
        )
        self.root = Node(0, None, 0, self._run(None, 0))
        self.nodes = [self.root]
        self.backoffs = 0

    def _run(self, parent: Node | None, sample: int, own: bool = False) -> Run:
        """A node's run: sampled with its own seed, or (`own`) as the run's first sample, at its temperature."""
        c = self.ctx
        # its calls and tokens are shown as they happen; its steps, once the node is recorded (`record`)
        on_event = c.on_event
        events = (lambda kind, payload: kind != "step" and on_event(kind, payload)) if on_event else None
        run = Run(question=c.question, kind=c.kind, model=c.model, config=self.own if own else self.config,
                  trajectory=Trajectory(None, {}), ledger=c.ledger, budget=c.budget, sample=0 if own else sample,
                  on_event=events, stream_tokens=c.streams)
        if parent is not None:
            run.trajectory.steps = parent.path()
            run.steps_left, run.advice = parent.run.steps_left, parent.run.advice
            run.extra_steps_granted = parent.run.extra_steps_granted
        return run

    def accepted(self, node: Node) -> bool:
        """A final answer rewarded at least `reward_high` and not refuted by verification."""
        c = node.candidate
        return c is not None and node.score >= self.config.reward_high and c.verified is not False

    def viable(self, node: Node) -> bool:
        """Worth expanding: rewarded at least `reward_low`, not refuted, not cut short by the budget."""
        refuted = node.candidate is not None and node.candidate.verified is False
        return node.stopped is None and not refuted and node.score >= self.config.reward_low

    def grow(self, node: Node) -> Node:
        """Think one step from the parent, reflect on it, verify it if it is a well-rewarded final answer."""
        run = node.run
        try:
            think = run.add(states.think(run))
            node.steps.append(think)
            node.score = 0.0
            if think.kind != StepKind.THINK:
                return node
            reflect = run.add(states.reflect(run))  # a format error leaves the score at 0
            node.steps.append(reflect)
            node.score = reflect.reward if reflect.reward is not None else 0.0
            if think.answer is not None:
                normalized = think.normalized or think.answer
                node.candidate = Candidate(think.answer, normalized, node.score, None, 0)
                if self.accepted(node) and self.config.verify and run.can_verify and run.pending is not None:
                    verify = run.add(states.verify(run))
                    node.steps.append(verify)
                    node.candidate.verified = verify.verdict
        except (BudgetExceeded, ContextLengthExceeded) as e:
            reason = stop_reason(run, e)  # as for any chain (`lifecycle`); its first call not fitting is raised
            if reason is None:
                raise
            if reason == StopReason.CONTEXT_LENGTH:
                node.score = 0.0  # its path no longer fits the context window: a dead end, not the search's end
            else:
                node.stopped = reason
        return node

    def record(self, node: Node) -> None:
        """Append a grown node's steps to the search's trajectory (and stream them)."""
        for step in node.steps:
            step.sample = node.id  # a step of the search is labelled by the node (branch) it grew
            self.tree.trajectory.append(step)
            self.tree.emit("step", step)

    def abandon(self, nodes: list[Node]) -> None:
        """Mark nodes (never the question itself) and their steps abandoned, once."""
        fresh = [n for n in nodes if not n.abandoned and n is not self.root]
        for n in fresh:
            n.abandoned = True
        indices = [s.index for n in fresh for s in n.steps]
        if indices:
            self.tree.trajectory.mark_abandoned(indices)

    def expand(self, frontier: list[Node]) -> tuple[list[Node], StopReason | None]:
        """Grow `branch` children of each frontier node, `parallel` at a time, within the budget."""
        parents = [(p, i == 0 and not self.sample_first and p.id not in self.expanded)
                   for p in frontier for i in range(self.branch)]
        self.expanded.update(p.id for p in frontier)
        children: list[Node] = []
        while parents:
            size = min(self.ctx.parallel, len(parents), self.max_nodes - (len(self.nodes) - 1))
            if size <= 0:
                return children, StopReason.LIMIT
            while size and (short := self.ctx.budget.exhausted(self.ctx.ledger, calls=2 * size)):
                size -= 1
            if not size:
                return children, budget_stop(short)  # type: ignore[arg-type]  # size drops only while short
            batch = []
            for p, own in parents[:size]:
                batch.append(Node(len(self.nodes), p, p.depth + 1, self._run(p, len(self.nodes), own)))
                self.nodes.append(batch[-1])
            parents = parents[size:]
            if size == 1:
                grown = [self.grow(batch[0])]
            else:
                with ThreadPoolExecutor(max_workers=size) as pool:
                    grown = list(pool.map(self.grow, batch))
            for node in grown:
                self.record(node)
            children += grown
            stopped = next((n.stopped for n in grown if n.stopped), None)
            if stopped or any(self.accepted(n) for n in grown):
                return children, stopped
        return children, None

    def search(self) -> tuple[Node | None, StopReason]:
        """Run the beam to an accepted answer or a limit; the accepted node (if any) and the stop reason."""
        levels: list[list[Node]] = [[self.root]]
        while True:
            frontier, levels[-1] = levels[-1][: self.width], levels[-1][self.width:]
            if frontier[0].depth >= self.max_depth:
                return None, StopReason.LIMIT
            children, reason = self.expand(frontier)
            accepted = [c for c in children if self.accepted(c)]
            if accepted:
                best = max(accepted, key=lambda n: (n.candidate.verified is True, n.score))  # type: ignore[union-attr]
                return best, StopReason.VERIFIED if best.candidate.verified else StopReason.ANSWERED  # type: ignore[union-attr]
            self.abandon([c for c in children if not self.viable(c)])
            if reason is not None:
                return None, reason
            viable = sorted((c for c in children if self.viable(c)), key=lambda n: -n.score)
            if viable:
                levels.append(viable)
                continue
            self.abandon(frontier)  # a dead end: back off to the alternates of an earlier level
            self.backoffs += 1
            if self.backoffs > self.max_backoffs:
                return None, StopReason.LIMIT
            while levels and not levels[-1]:
                levels.pop()
            if not levels:
                levels = [[self.root]]

    def best_guess(self) -> Node | None:
        """Without an accepted answer: the best-scored unrefuted answer, else the best deepest node."""
        answered = [n for n in self.nodes if n.candidate is not None and n.candidate.verified is not False]
        if answered:
            return max(answered, key=lambda n: n.score)
        grown = [n for n in self.nodes[1:] if n.steps]
        return max(grown, key=lambda n: (n.depth, n.score)) if grown else None


def solve(ctx: StrategyContext) -> Outcome:
    """Beam search; every node is kept in the trajectory, those off the answer's path marked abandoned."""
    beam = Beam(ctx)
    tree = beam.tree
    with lifecycle(tree):
        node, reason = beam.search()
        node = node or beam.best_guess()
        on_path = set()
        walk = node
        while walk is not None:
            on_path.add(walk.id)
            walk = walk.parent
        beam.abandon([n for n in beam.nodes if n.id not in on_path])
        tree.candidates = [n.candidate for n in beam.nodes if n.candidate is not None]
        if node is not None and node.candidate is None:  # nothing proposed: read an answer from its steps
            for step in reversed(node.path()):
                found = extract_answer(step.text, ctx.kind) if step.kind == StepKind.THINK else None
                if found is not None:
                    node.candidate = Candidate(found.text, found.normalized, node.score, None, 0)
                    break
        tree.final = node.candidate if node is not None else None
        tree.stop(reason)
    details = {"tree": [n.to_dict() for n in beam.nodes[1:]], "backoffs": beam.backoffs,
               "depth": max((n.depth for n in beam.nodes), default=0),
               "settings": {"width": beam.width, "branch": beam.branch, "max_depth": beam.max_depth,
                            "max_nodes": beam.max_nodes, "max_backoffs": beam.max_backoffs}}
    return Outcome(answer=tree.final, stop_reason=tree.stop_reason or StopReason.ERROR, runs=[tree],
                   samples_used=len(beam.nodes) - 1, samples_allowed=beam.max_nodes, details=details,
                   error=tree.error)
