"""`reason view`: a saved run as one self-contained web page (inline CSS and JS, nothing fetched).

A chain is a timeline of its steps (kind, reward, code and output, tokens, $), collapsed until opened; a
`vote` or `best-of-n` shows its samples side by side under the tally, with the sample after which its stop
rule fired; a `beam` is its tree, scores on the nodes and pruned branches greyed; a bench folder is its
results table, each problem linking to its own page (written to `NAME-runs/` beside the table). A search
field filters steps and rows. The HTML is rendered here, so the page reads the same without JavaScript.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from orchestrator.kinds import StepKind
from orchestrator.solves import Chain, Node, Solve, bench_rows, is_bench, judge, load_solve, row_trajectory
from orchestrator.trajectory import Step

ASSETS = Path(__file__).parent / "view_assets"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, head: str, body: str) -> str:
    """A whole page: the sticky header with the search field, then `body`; CSS and JS inline."""
    css = (ASSETS / "view.css").read_text(encoding="utf-8")
    js = (ASSETS / "view.js").read_text(encoding="utf-8")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{css}</style></head>'
            f'<body><header>{head}<div class="tools"><input id="search" type="search" '
            'placeholder="Search steps, answers, problems…" aria-label="Search"><button id="expand">Expand all'
            '</button><button id="collapse">Collapse all</button><span id="hits"></span></div></header>'
            f"<main>{body}</main><script>{js}</script></body></html>\n")


def badge(text: Any, cls: str = "") -> str:
    return f'<span class="badge {cls}">{esc(text)}</span>'


def verdict(correct: bool | None) -> str:
    return "" if correct is None else badge("right", "ok") if correct else badge("wrong", "bad")


def step_html(step: Step) -> str:
    """One step: a summary line (index, kind, reward, tokens, $, the start of its text) over its details."""
    marks = [badge(f"reward {step.reward:.2f}", "reward")] if step.reward is not None else []
    if step.verdict is not None:
        marks.append(badge("verified" if step.verdict else "refuted", "ok" if step.verdict else "bad"))
    if step.answer is not None and step.kind in (StepKind.THINK, StepKind.ANSWER):
        marks.append(badge(f"answer {step.answer}"))
    marks += [badge(f"{step.tokens} tok"), badge(f"${step.cost_usd:.4f}")]
    preview = " ".join(step.text.split())[:140]
    parts = [f'<pre class="text">{esc(step.text)}</pre>']
    if step.code:
        parts.append(f'<div class="label">code</div><pre class="code">{esc(step.code)}</pre>')
    if step.observation:
        parts.append(f'<div class="label">output</div><pre class="obs">{esc(step.observation)}</pre>')
    if step.error:
        parts.append(f'<pre class="err">{esc(step.error)}</pre>')
    cls = f"step kind-{esc(step.kind)}" + (" abandoned" if step.abandoned else "")
    return (f'<li class="{cls}" data-search><details><summary><span class="label">#{step.index}</span>'
            f'<span class="kind">{esc(step.kind)}</span>{"".join(marks)}<span class="preview">{esc(preview)}'
            f'</span></summary><div class="body">{"".join(parts)}</div></details></li>')


def timeline(steps: list[Step]) -> str:
    return f'<ol class="timeline">{"".join(step_html(s) for s in steps)}</ol>'


def solve_head(solve: Solve, back: str | None = None) -> str:
    """The header: the question, then model, strategy, stop reason, answer, gold, tokens and $."""
    steps = solve.steps or [s for c in solve.chains for s in c.steps]
    row = solve.row or {}
    stop = solve.outcome.get("stop_reason") or row.get("stop_reason") or (
        solve.chains[0].stop_reason if len(solve.chains) == 1 else None)
    single = solve.chains[0].answer if len(solve.chains) == 1 and not solve.tree else None
    answer = solve.outcome.get("answer", row.get("predicted", single))
    meta = [("model", solve.header.get("model")), ("strategy", solve.strategy), ("stop", stop),
            ("answer", answer), ("gold", solve.gold), ("tokens", sum(s.tokens for s in steps)),
            ("$", f"{sum(s.cost_usd for s in steps):.4f}"), ("problem", row.get("problem_id"))]
    items = "".join(f"<span>{esc(k)} <b>{esc(v)}</b></span>" for k, v in meta if v is not None)
    if "correct" in row:
        items += verdict(bool(row["correct"]))
    link = f'<span><a href="{esc(back)}">← table</a></span>' if back else ""
    return f'<h1>{esc(solve.question)}</h1><div class="meta">{link}{items}</div>'


def stop_point(solve: Solve) -> tuple[list[Chain], int | None, str]:
    """The samples in the order they finished, the position after which sampling stopped, and why."""
    order = sorted(solve.chains, key=lambda c: c.finished)
    details = solve.outcome.get("details") or {}
    reason = solve.outcome.get("stop_reason") or (solve.row or {}).get("stop_reason") or "reason not saved"
    after = details.get("after") or len(order)
    rule = details.get("stopped_by")
    why = f"{reason} ({rule} rule)" if rule and rule != reason else reason
    allowed = solve.outcome.get("samples_allowed") or (solve.row or {}).get("samples_allowed")
    of = f" of {allowed} allowed" if allowed else ""
    return order, after, f"Stopped: {why} after sample {after} to finish{of}; {len(order)} ran."


def samples_html(solve: Solve) -> str:
    """The tally, where the stop rule fired, and the samples side by side in the order they finished."""
    tally = solve.tally()
    top = max(tally.values(), default=1)
    rows = "".join(f'<tr><td><b>{esc(label)}</b></td><td class="num">{votes}</td><td>'
                   f'<div class="bar" style="width:{120 * votes // top}px"></div></td></tr>'
                   for label, votes in tally.items())
    order, after, note = stop_point(solve)
    mark = "sample limit reached" if note.startswith("Stopped: limit") else "stop fired here"
    winner = solve.outcome.get("answer") or (solve.row or {}).get("predicted")
    chosen = (solve.outcome.get("details") or {}).get("chosen_sample")  # best-of-n names the sample it kept
    columns = []
    for position, chain in enumerate(order, 1):
        stop = badge(mark, "stop") if position == after else ""
        won = chain.sample == chosen if chosen is not None else winner is not None and chain.answer == winner
        cls = "sample winner" if won else "sample"
        columns.append(f'<section class="{cls}" data-search><h3>sample {chain.sample} {badge(f"#{position} to finish")}'
                       f'{badge(f"answer {chain.answer}")}{verdict(chain.correct)}{badge(f"{chain.tokens} tok")}'
                       f'{badge(chain.stop_reason or "unfinished")}{stop}</h3>{timeline(chain.steps)}</section>')
    tally_text = ", ".join(f"{label} ×{votes}" for label, votes in tally.items())
    return (f'<h2>Tally</h2><table class="tally" data-tally="{esc(tally_text)}">{rows}</table>'
            f'<p class="stopnote">{esc(note)}</p><h2>Samples</h2><div class="samples">{"".join(columns)}</div>')


def tree_html(solve: Solve) -> str:
    """A beam's nodes as a nested tree, each with its steps; pruned nodes greyed, the answer's path marked."""
    children: dict[int | None, list[Node]] = {}
    for node in solve.tree:
        children.setdefault(node.parent, []).append(node)
    correct = {c.node: c.correct for c in solve.chains}
    by_index = {s.index: s for s in solve.steps}

    def render(node: Node) -> str:
        cls = "node pruned" if node.abandoned else "node onpath"
        marks = badge(f"score {node.score:.2f}", "reward") + (badge(f"answer {node.answer}") if node.answer else "")
        marks += verdict(correct.get(node.id)) + (badge("pruned") if node.abandoned else "")
        kids = "".join(render(c) for c in children.get(node.id, []))
        steps = [by_index[i] for i in node.steps if i in by_index]
        return (f'<li class="{cls}" data-search><div class="nodebox">node {node.id} · depth {node.depth} {marks}'
                f'</div>{timeline(steps)}{f"<ul>{kids}</ul>" if kids else ""}</li>')

    roots = [n for n in solve.tree if n.parent not in {m.id for m in solve.tree}]
    pruned = sum(n.abandoned for n in solve.tree)
    return (f'<h2>Beam tree</h2><p class="stopnote">{len(solve.tree)} nodes, {pruned} pruned</p>'
            f'<ul class="tree">{"".join(render(n) for n in roots)}</ul>')


def solve_page(solve: Solve, back: str | None = None) -> str:
    """The page of one solve: a timeline, samples side by side, or a tree."""
    judge(solve)
    if solve.tree:
        body = tree_html(solve)
    elif len(solve.chains) > 1:
        body = samples_html(solve)
    else:
        chain = solve.chains[0]
        body = f"<h2>Steps {verdict(chain.correct)}</h2>{timeline(chain.steps)}"
    return page(solve.question[:80], solve_head(solve, back), body)


def bench_page(folder: Path, links: list[str | None]) -> str:
    """A bench folder's results as a table; each row links to its problem's page."""
    head = ("problem", "arm", "gold", "predicted", "result", "stop", "tokens", "$", "seconds", "run")
    cells = []
    for row, link in zip(bench_rows(folder), links, strict=True):
        tokens = (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0)
        run = f'<a href="{esc(link)}">steps</a>' if link else "—"
        cells.append(f'<tr data-search><td>{esc(row.get("problem_id"))}</td><td>{esc(row.get("arm"))}</td>'
                     f'<td>{esc(row.get("gold"))}</td><td>{esc(row.get("predicted"))}</td>'
                     f'<td>{verdict(bool(row.get("correct")))}</td><td>{esc(row.get("stop_reason"))}</td>'
                     f'<td class="num">{tokens}</td><td class="num">{row.get("cost_usd") or 0:.4f}</td>'
                     f'<td class="num">{row.get("seconds") or 0:.1f}</td><td>{run}</td></tr>')
    rows = bench_rows(folder)
    right = sum(bool(r.get("correct")) for r in rows)
    title = f"Bench {folder.name}: {right}/{len(rows)} right"
    table = "".join(f"<th>{h}</th>" for h in head)
    return page(title, f'<h1>{esc(title)}</h1><div class="meta"><span>{esc(folder)}</span></div>',
                f'<table class="bench"><thead><tr>{table}</tr></thead><tbody>{"".join(cells)}</tbody></table>')


def write_view(run: Path, out: Path) -> int:
    """Write the page of `run` (a trajectory, run folder or bench folder) to `out`; return the pages written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if not is_bench(run):
        out.write_text(solve_page(load_solve(run)), encoding="utf-8")
        return 1
    pages = out.parent / f"{out.stem}-runs"
    pages.mkdir(exist_ok=True)
    links: list[str | None] = []
    for i, row in enumerate(bench_rows(run)):
        where = row_trajectory(run, row)
        if where is None:
            links.append(None)
            continue
        name = f"{i:04d}.html"
        (pages / name).write_text(solve_page(load_solve(where, row), back=f"../{out.name}"), encoding="utf-8")
        links.append(f"{pages.name}/{name}")
    out.write_text(bench_page(run, links), encoding="utf-8")
    return 1 + sum(link is not None for link in links)
