"""`reason view` pages of runs the scripted model writes, opened from disk by a headless Debian chromium: no
console errors, a screenshot that is not blank, the tally and a step's reward on the page, the search field
working, and a bench folder's table linking to each problem's page."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from test_export import APPLES, make_bench

from orchestrator import Reasoner, ReasonConfig, ScriptedModel
from orchestrator.view import write_view

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                    "(apt-get install -y chromium; scripts/setup.sh installs it)")
BEAM = ["Step 1: 3 apples to start.", "Good start.\nReward: 0.9", "Step 1: 3 - 6 = -3.", "Wrong.\nReward: 0.2",
        "Step 2: 3 + 6 = 9.\nFinal answer: 9", "Right.\nReward: 0.95", "Verdict: CORRECT"]


def run(strategy: str, script, tmp_path: Path, **options) -> Path:
    """Solve the apples question with the scripted model; the saved run's path."""
    config = ReasonConfig(verify=False) if strategy == "chain" else ReasonConfig()
    model = script if isinstance(script, ScriptedModel) else ScriptedModel(script, repeat_last=True)
    result = Reasoner(model, strategy, config=config, runs_dir=tmp_path / "runs",
                      strategy_options=options, concurrency=1).solve(APPLES)
    return Path(result.trajectory_path)


def pages(tmp_path: Path) -> dict[str, Path]:
    chain = run("chain", ["Step 1: 3 + 6 = 9.\nFinal answer: 9", "Checked the sum.\nReward: 0.9"], tmp_path)
    vote = run("vote", [f"Step 1: add.\nFinal answer: {v}" for v in (9, 8, 9, 9, 9)], tmp_path, samples=8)
    beam = run("beam", BEAM, tmp_path, width=2, branch=2)
    out = {}
    for name, path in (("chain", chain), ("vote", vote), ("beam", beam)):
        out[name] = tmp_path / f"{name}.html"
        write_view(path, out[name])
    return out


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", *args], capture_output=True, text=True, timeout=120, check=False)


def render(page: Path, profile: Path, query: str = "") -> str:
    """The DOM after the page's script ran; fails on any console message or error the page noted."""
    done = chromium(f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri() + query)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert 'data-ready="1"' in done.stdout and "data-js-errors" not in done.stdout
    return done.stdout


def png_pixels(path: Path) -> tuple[int, int, list[bytearray]]:
    """Width, height and unfiltered rows of an 8-bit RGB or RGBA PNG (all chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows = zlib.decompress(idat), width * channels, []
    prior = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prior[i], prior[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prior = line
    return width, height, rows


@needs_chromium
def test_chain_vote_and_beam_pages_render_without_errors_and_show_what_happened(tmp_path):
    made = pages(tmp_path)
    chain = render(made["chain"], tmp_path / "p")
    assert "reward 0.90" in chain and "Checked the sum." in chain and "<details" in chain
    assert "<details open" not in chain  # steps start collapsed
    vote = render(made["vote"], tmp_path / "p")
    # one sample said 8, so Beta at 0.95 needed 9 x6 against it: the seventh to finish fired the stop
    assert 'data-tally="9 ×6, 8 ×1"' in vote and vote.count("stop fired here") == 1
    assert "Stopped: consensus (beta rule) after sample 7 to finish of 8 allowed; 7 ran." in vote
    beam = render(made["beam"], tmp_path / "p")
    assert "score 0.95" in beam and 'class="node pruned"' in beam and "3 - 6 = -3" in beam
    for html in (chain, vote, beam):
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from the network


@needs_chromium
def test_the_search_field_filters_steps(tmp_path):
    page = pages(tmp_path)["beam"]
    dom = render(page, tmp_path / "p", "?q=3%20-%206")
    assert re.search(r'class="step kind-think abandoned"[^>]*data-search', dom)  # the match stays and opens
    assert 'class="node onpath miss"' in dom and "1 matching" not in dom


@needs_chromium
def test_a_screenshot_of_a_page_is_not_blank(tmp_path):
    shot = tmp_path / "vote.png"
    done = chromium(f"--user-data-dir={tmp_path / 'p'}", f"--screenshot={shot}", "--window-size=640,480",
                    pages(tmp_path)["vote"].resolve().as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    width, height, rows = png_pixels(shot)
    assert (width, height) == (640, 480)
    values = [v for row in rows[::4] for v in row[::7]]
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    assert variance > 200 and min(values) < 100  # text and bars on the white page, not one flat colour


@needs_chromium
def test_a_page_error_is_caught_by_the_check(tmp_path):
    page = tmp_path / "broken.html"
    write_view(run("chain", ["Step 1: 9.\nFinal answer: 9", "Reward: 0.9"], tmp_path), page)
    page.write_text(page.read_text().replace("</main>", "</main><script>noSuchFunction();</script>"))
    with pytest.raises(AssertionError, match="noSuchFunction"):
        render(page, tmp_path / "p")


def test_a_bench_folder_is_a_table_linking_to_each_problems_page(tmp_path):
    bench = make_bench(tmp_path / "bench", n=3)
    out = tmp_path / "site" / "bench.html"
    done = subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", "view", str(bench),
                           "--html", str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out} and 3 run pages"
    table = out.read_text()
    links = re.findall(r'href="(bench-runs/\d+\.html)"', table)
    assert len(links) == 3 and table.count("<tr data-search>") == 3 and "Bench bench: 3/3 right" in table
    first = (out.parent / links[0]).read_text()
    assert 'href="../bench.html"' in first and "Tally" in first and "sums/0" in first
    missing = subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", "view",
                              str(tmp_path / "site"), "--html", str(tmp_path / "x.html")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 1 and "is not a run or bench folder" in missing.stderr


def test_a_step_shows_its_code_and_output_and_model_text_is_never_markup(tmp_path):
    from orchestrator.trajectory import Call, Step, Trajectory

    path = tmp_path / "run.jsonl"
    trajectory = Trajectory(path, {"question": "Is <b>7</b> prime?", "model": "fake/x", "strategy": "chain"})
    call = Call([{"role": "user", "content": "q"}], "x", 5, 7, 0, 0.0012, 0.1)
    trajectory.append(Step("act", "Let me check. <script>alert(1)</script>", code="print(all(7 % d for d in (2, 3)))",
                           observation="True", calls=[call]))
    trajectory.append(Step("reflect", "Checked by code.", reward=0.85))
    trajectory.close({"stop_reason": "answered", "answer": "yes"})
    write_view(path, tmp_path / "run.html")
    html = (tmp_path / "run.html").read_text()
    assert '<pre class="code">print(all(7 % d for d in (2, 3)))</pre>' in html and '<pre class="obs">True</pre>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "Is &lt;b&gt;7&lt;/b&gt; prime?" in html and "reward 0.85" in html and "12 tok" in html and "$0.0012" in html


def test_a_best_of_n_page_outlines_the_sample_it_kept_and_says_it_ran_to_its_limit(tmp_path):
    rewards = iter(["Reward: 0.85", "Reward: 0.95", "Reward: 0.8"])
    thinks = iter([f"Step 1: add.\nFinal answer: {v}" for v in (8, 9, 7)])
    model = ScriptedModel(lambda m: next(rewards) if "Reward: X" in m[-1]["content"] else next(thinks))
    path = run("best-of-n", model, tmp_path, samples=3, chain={"verify": False, "max_attempts": 1})
    write_view(path, tmp_path / "b.html")
    html = (tmp_path / "b.html").read_text()
    assert re.findall(r'<section class="sample winner" data-search><h3>sample (\d)', html) == ["1"]
    assert "Stopped: limit after sample 3 to finish of 3 allowed; 3 ran." in html
    assert html.count("sample limit reached") == 1 and "stop fired here" not in html
