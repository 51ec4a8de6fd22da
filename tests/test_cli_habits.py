"""The habits users bring (simonw/llm, the OpenAI CLI, optillm): budgets and $, flags, model names, config.

Each test runs the real `reason` console script in a subprocess (its exit code and stderr are what a script
sees) against the project's fake OpenAI server on 127.0.0.1, or the real SDK parts in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_server import Fault, serve

from orchestrator import load_trajectory
from orchestrator.keys import ENV_VARS, set_key
from orchestrator.models import get_model, pricing
from orchestrator.models.retry import RetryPolicy

REASON = Path(sys.executable).parent / "reason"
Q = "What is 17 * 23?"
CHAIN = ["Step 1: 17 * 23 = 391.\nFinal answer: 391", "Correct.\nReward: 0.9", "391 is right. Verdict: CORRECT"]


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for var in (*ENV_VARS.values(), "OPENAI_BASE_URL", "REASON_SERVER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    getattr(pricing, "GIVEN", {}).clear()  # prices given by an earlier test in this process


# An answered chain whose only check is the model's own review exits 3 (answered, unverified): see README.
def reason(*args: str, input: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(REASON), *args], input=input, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def runs() -> list[Path]:
    return sorted(Path(os.environ["REASON_RUNS_DIR"]).glob("*.jsonl"))


# --- 6: a $ budget is enforceable, or refused ---------------------------------------------------------
def test_an_unpriced_model_shows_its_cost_as_unknown_not_zero():
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("my-model"), Q)
    assert result.returncode == 3, result.stderr
    summary = result.stderr.replace("\n", " ")  # the closing line, however the terminal wraps it
    assert "$?" in summary[summary.index("answered ·"):] and "$0.0000" not in summary
    [saved] = runs()
    _, steps, _ = load_trajectory(saved)
    assert {c.cost_source for s in steps for c in s.calls} == {"unknown"}


def test_a_dollar_budget_on_an_unpriced_model_is_refused_before_any_call():
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("my-model"), "--budget-usd", "0.01", Q)
        assert result.returncode == 2
        [line] = errors(result.stderr)
        assert "no known price" in line and "--price" in line
        assert srv.posts() == [] and not runs()
        old_name = reason("-m", srv.model("my-model"), "--max-usd", "0.01", Q)
        assert old_name.returncode == 2 and "no known price" in old_name.stderr


def test_a_given_price_makes_the_dollar_budget_count_by_option_or_config():
    def cost(usage: dict) -> float:  # 10 $/M input and 20 $/M output tokens (the server counts one a word)
        return (usage["prompt_tokens"] * 10 + usage["completion_tokens"] * 20) / 1e6

    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("my-model"), "--budget-usd", "1", "--price", "10", "20", "--json", Q)
    assert result.returncode == 3, result.stderr
    usage = json.loads(result.stdout)["usage"]
    assert usage["cost_usd"] == pytest.approx(cost(usage)) and usage["cost_usd"] > 0
    with serve(replies=CHAIN) as srv:
        assert reason("config", "set", f"prices.{srv.model('my-model')}", "[10, 20]").returncode == 0
        again = reason("-m", srv.model("my-model"), "--budget-usd", "1", "--json", Q)
    assert again.returncode == 3, again.stderr
    usage = json.loads(again.stdout)["usage"]
    assert usage["cost_usd"] == pytest.approx(cost(usage)) and usage["cost_usd"] > 0


def test_a_url_named_after_a_priced_model_is_priced_as_that_model():
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("gpt-4o-mini"), "--budget-usd", "0.5", "--json", Q)
    assert result.returncode == 3, result.stderr
    usage = json.loads(result.stdout)["usage"]
    inp, out, _ = pricing.price("gpt-4o-mini")
    assert usage["cost_usd"] == pytest.approx(usage["prompt_tokens"] * inp + usage["completion_tokens"] * out)
    assert usage["cost_usd"] > 0


def test_the_cost_a_provider_reports_wins_and_its_source_is_recorded():
    with serve(replies=CHAIN, reported_cost=0.25) as srv:  # OpenRouter's `usage.cost`
        result = reason("-m", srv.model("gpt-4o-mini"), "--json", Q)
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["usage"]["cost_usd"] == pytest.approx(0.25 * data["usage"]["calls"])
    _, steps, _ = load_trajectory(runs()[0])
    assert {c.cost_source for s in steps for c in s.calls} == {"provider"}


def test_a_local_model_is_free_and_says_so():
    from orchestrator.ledger import Budget

    Budget(max_usd=0.01).refuse_unenforceable(get_model("local/smollm2-135m"))  # $0 is a known price


def test_bench_refuses_a_dollar_budget_on_an_unpriced_model_unless_config_prices_it(tmp_path):
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    with serve(replies=["Final answer: 2"]) as srv:
        args = ("bench", "-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain", "-b", "usd=0.05",
                "--out", str(tmp_path / "out"))
        refused = reason(*args)
        assert refused.returncode == 2 and srv.posts() == []
        assert "no known price" in refused.stderr and "[prices]" in refused.stderr
        assert reason("config", "set", f"prices.{srv.model('m')}", "[10, 20]").returncode == 0
        priced = reason(*args)
    assert priced.returncode == 0, priced.stderr
    [row] = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert row["cost_usd"] == pytest.approx((row["prompt_tokens"] * 10 + row["completion_tokens"] * 20) / 1e6)


# --- 7: budgets say what they limit -------------------------------------------------------------------
def test_a_token_budget_too_small_for_one_call_is_an_error_with_the_number():
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("m"), "--budget-tokens", "500", Q)
        assert result.returncode == 2 and srv.posts() == []
    [line] = errors(result.stderr)
    assert "500 tokens is too small for one call" in line and "600" in line


def test_max_tokens_is_the_old_name_of_the_run_budget_and_warns():
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("m"), "--max-tokens", "5000", Q)
    assert result.returncode == 3, result.stderr
    assert "Warning: --max-tokens is now --budget-tokens" in result.stderr
    assert load_trajectory(runs()[0])[0]["budget"]["max_tokens"] == 5000


@pytest.mark.parametrize("flag", [("--max-tokens-per-call", "40"), ("-o", "max_tokens", "40")])
def test_a_per_call_cap_caps_every_call(flag):
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("m"), "--budget-tokens", "5000", *flag, Q)
        assert result.returncode == 3, result.stderr
        caps = [r.body.get("max_tokens") for r in srv.posts()]
    assert len(caps) == 3 and set(caps) == {40}  # think, reflect and verify: every phase


# --- 8: the live view shows the budget used against its limit ---------------------------------------------
def test_the_live_view_counts_each_budget_against_its_limit():
    from io import StringIO

    from rich.console import Console

    from orchestrator import Budget, Reasoner, ScriptedModel
    from orchestrator.cli.render import LiveView

    budget = Budget(max_tokens=5000, max_usd=0.05, max_seconds=60, max_calls=10)
    out = StringIO()
    with LiveView("fake", "chain", budget=budget, console=Console(file=out, width=200)) as view:
        result = Reasoner(ScriptedModel(CHAIN, usd_per_token=1e-6), budget=budget).solve(Q, on_event=view.on_event)
    view.summary(result)
    footer = view.counter.totals()
    tokens = result.usage.total_tokens
    assert f"3/10 calls · {tokens:,}/5,000 tokens · ${tokens * 1e-6:.4f}/$0.05 · " in footer
    assert footer.endswith("/60.0s")
    assert f"3/10 calls · {tokens:,}/5,000 tokens" in out.getvalue()


# --- 9: model names as users type them --------------------------------------------------------------------
def test_a_bare_gpt_name_goes_to_openai_with_the_stored_key():
    set_key("openai", "sk-proj-STORED0123456789abcdefghij")
    with serve(replies=CHAIN) as srv:
        result = reason("-m", "gpt-4o-mini", "-q", Q, env={"OPENAI_BASE_URL": srv.base_url})
        assert result.returncode == 3, result.stderr
        [first, *_] = srv.posts()
    assert first.headers["authorization"] == "Bearer sk-proj-STORED0123456789abcdefghij"
    assert first.body["model"] == "gpt-4o-mini"
    assert load_trajectory(runs()[0])[0]["model"] == "openai/gpt-4o-mini"


def test_missing_credentials_are_never_retried_whatever_the_status():
    litellm_style = Fault(500, message="OpenAIException - The api_key client option must be set either by "
                                       "passing api_key to the client or by setting OPENAI_API_KEY")
    with serve(replies=CHAIN, faults=[litellm_style, litellm_style]) as srv:
        result = reason("-m", srv.model("m"), Q)
        assert len(srv.posts()) == 1
    assert result.returncode == 1
    [line] = errors(result.stderr)
    assert "credentials are missing or were refused" in line and "gave up" not in line


def test_an_unknown_bare_name_suggests_close_matches():
    result = reason("-m", "gpt4o-mini", Q)
    assert result.returncode == 1
    [line] = errors(result.stderr)
    assert "unknown model 'gpt4o-mini': did you mean openai/gpt-4o-mini" in line


def test_a_connection_error_names_the_url():
    from orchestrator.errors import ProviderError

    with serve() as srv:
        url = srv.base_url
    model = get_model(f"{url}#m", retry_policy=RetryPolicy(attempts=1))
    with pytest.raises(ProviderError) as info:
        model.complete([{"role": "user", "content": "hi"}])
    assert f"POST {url}/chat/completions" in str(info.value)


# --- 12: flags as llm users type them ----------------------------------------------------------------------
def test_dash_s_is_the_system_prompt_as_in_llm():
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("m"), "-s", "You are terse", "-q", Q)
        assert result.returncode == 3, result.stderr
        system = srv.posts()[0].body["messages"][0]
    assert system["role"] == "system" and system["content"].endswith("You are terse")
    header = load_trajectory(runs()[0])[0]
    assert (header["strategy"], header["config"]["system"]) == ("chain", "You are terse")


def test_dash_s_with_a_strategy_name_is_still_the_strategy_with_a_warning():
    with serve(replies=["Final answer: 391"]) as srv:
        result = reason("-m", srv.model("m"), "-s", "plain", "-q", Q)
    assert result.returncode == 3, result.stderr
    assert "Warning: `-s plain` now sets the system prompt" in result.stderr
    assert load_trajectory(runs()[0])[0]["strategy"] == "plain"


@pytest.mark.parametrize("flag", [("-t", "0.3"), ("--temperature", "0.3"), ("-o", "temperature", "0.3")])
def test_one_temperature_flag_sets_the_first_attempt(flag):
    with serve(replies=CHAIN) as srv:
        result = reason("-m", srv.model("m"), *flag, "-q", Q)
        assert result.returncode == 3, result.stderr
        temperatures = [r.body.get("temperature") for r in srv.posts()]
    assert temperatures[0] == 0.3
    assert load_trajectory(runs()[0])[0]["config"]["temperature"] == 0.3


def test_reason_alone_at_a_terminal_prints_help_with_examples():
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run([str(REASON)], stdin=follower, capture_output=True, text=True, timeout=30,
                                check=False)
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 0
    assert "Examples:" in result.stdout and 'reason "What is 9.11 - 9.8?"' in result.stdout
    assert "Commands" in result.stdout


def test_ask_help_shows_examples_and_every_strategy():
    from orchestrator.strategies import DESCRIPTIONS

    result = reason("ask", "--help")
    assert result.returncode == 0
    assert "Examples:" in result.stdout and "--budget-tokens" in result.stdout
    section = result.stdout.split("Strategies (--strategy NAME", 1)[1]
    assert "`reason strategies` lists their -S options" in section
    assert all(name in section for name in DESCRIPTIONS)


def test_bench_dash_o_is_the_old_name_of_out(tmp_path):
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    with serve(replies=["Final answer: 2"]) as srv:
        result = reason("bench", "-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain",
                        "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "`reason bench -o DIR` is now `--out DIR`" in result.stderr
    assert (tmp_path / "out" / "results.jsonl").is_file()


# --- 13: config set validates, every documented setting can be set ---------------------------------------
EXAMPLES = {
    "model": "openai/gpt-4o-mini", "strategy": "vote", "system": "Be brief.", "temperature": 0.2,
    "budget_tokens": 20000, "budget_usd": 0.05, "budget_seconds": 60.0, "budget_calls": 30,
    "max_tokens_per_call": 512, "max_steps": 12, "attempts": 3, "verify_by": "resolve", "tools": True,
    "sandbox": "local-unsafe", "cache": True, "runs_dir": "/tmp/reason-runs",
}


def config_file() -> Path:
    return Path(os.environ["REASON_CONFIG_DIR"]) / "config.toml"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("strategy", "votes", "unknown strategy 'votes'"),
    ("tools", "yes", "valid boolean"),
    ("cache", "1", "valid boolean"),
    ("sandbox", "docker", "'local', 'local-unsafe' or 'e2b'"),
    ("verify_by", "vote", "'auto', 'judge', 'program' or 'resolve'"),
    ("temperature", "3", "less than or equal to 2"),
    ("budget_usd", "lots", "valid number"),
    ("prices.my-model", "[1]", "prices"),
    ("endpoints.vllm.nope", "1", "endpoints.NAME.FIELD"),
    ("nope", "1", "unknown setting 'nope'"),
])
def test_config_set_refuses_a_bad_value_and_leaves_the_file_alone(key, value, message):
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text('strategy = "plain"\n')
    result = reason("config", "set", key, value)
    assert result.returncode == 1
    [line] = errors(result.stderr)
    assert message in line
    assert config_file().read_text() == 'strategy = "plain"\n'


def test_every_documented_setting_can_be_set_and_read_back():
    from orchestrator.settings import SETTABLE, Endpoint, load_settings, toml_literal

    assert set(EXAMPLES) == set(SETTABLE)  # a new setting needs an example here, and a line in docs/cli.md
    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    for key, value in EXAMPLES.items():
        assert f"`{key}`" in docs
        result = reason("config", "set", key, toml_literal(value) if not isinstance(value, str) else value)
        assert result.returncode == 0, result.stderr
    assert reason("config", "set", "endpoints.vllm.base_url", "http://127.0.0.1:8000/v1").returncode == 0
    assert reason("config", "set", "endpoints.vllm.api_key_env", "VLLM_KEY").returncode == 0
    assert reason("config", "set", "prices.my-model", "[0.15, 0.6]").returncode == 0
    settings = load_settings()
    assert {k: getattr(settings, k) for k in EXAMPLES} == EXAMPLES
    assert settings.endpoints["vllm"].base_url == "http://127.0.0.1:8000/v1"
    assert settings.prices == {"my-model": (0.15, 0.6)}
    assert "[endpoints.NAME]" in docs and all(f"`{field}`" in docs for field in Endpoint.model_fields)
    assert "[endpoints.vllm]" in reason("config", "show").stdout


def test_the_old_budget_names_still_work_with_a_warning():
    result = reason("config", "set", "max_calls", "1")
    assert result.returncode == 0 and "`max_calls` is now `budget_calls`" in result.stderr
    assert "budget_calls = 1" in config_file().read_text()
    config_file().write_text("max_calls = 1\n")  # a file written before the rename
    shown = reason("config", "show")
    assert "budget_calls = 1" in shown.stdout and "`max_calls` is now `budget_calls`" in shown.stderr
    with serve(replies=CHAIN) as srv:
        data = json.loads(reason("-m", srv.model("m"), "--json", Q).stdout)
    assert (data["stop_reason"], data["usage"]["calls"]) == ("budget_calls", 1)


# --- 14: logs and replay ------------------------------------------------------------------------------------
def record_runs() -> dict[str, Path]:
    """A chain that answered, a chain stopped on its call budget, and a vote of four samples (9 ×3, 8 ×1)."""
    from orchestrator import Budget, Reasoner, ScriptedModel

    made = {}
    made["chain"] = Path(Reasoner(ScriptedModel(CHAIN), "chain").solve(Q).trajectory_path)
    made["budget"] = Path(Reasoner(ScriptedModel(CHAIN), "chain", budget=Budget(max_calls=1)).solve(Q).trajectory_path)
    votes = [f"Step 1: add.\nFinal answer: {v}" for v in (9, 8, 9, 9)]
    made["vote"] = Path(Reasoner(ScriptedModel(votes, usd_per_token=1e-6), "vote", concurrency=1,
                                 strategy_options={"samples": 4, "rule": "none"}).solve(Q).trajectory_path)
    return made


def test_logs_shows_tokens_dollars_seconds_and_the_real_stop_reason_with_filters():
    made = record_runs()
    entries = {e["id"]: e for e in json.loads(reason("logs", "--json").stdout)}
    vote = entries[made["vote"].name]
    assert (vote["stop_reason"], vote["tally"], vote["samples"]) == ("limit", {"9": 3, "8": 1}, 4)
    assert vote["tokens"] > 0 and vote["cost_usd"] == pytest.approx(vote["tokens"] * 1e-6) and vote["seconds"] > 0
    assert entries[made["budget"].stem]["stop_reason"] == "budget_calls"
    text = reason("logs", "--stop", "budget").stdout
    assert made["budget"].stem in text and made["chain"].stem not in text and "1 calls" in text
    text = reason("logs", "--strategy", "vote").stdout
    assert made["vote"].name in text and "(9 ×3, 8 ×1)" in text and "tokens · $0.0" in text
    assert reason("logs", "--stop", "consensus").stderr.startswith("no runs in")


def test_replay_by_id_or_last_and_a_vote_shows_its_tally_and_totals():
    made = record_runs()
    last = reason("replay", "last")
    assert last.returncode == 0, last.stderr
    assert "solve: 9 (limit: all 4 samples ran, no stable majority sooner, P = 0.81) · votes 9 ×3, 8 ×1 · " \
           "4 samples · 4 calls" in last.stdout
    short_id = made["chain"].stem.rsplit("-", 1)[1]
    by_id = reason("replay", short_id)
    assert by_id.returncode == 0 and "answer: 391 (answered)" in by_id.stdout
    missing = reason("replay", "nosuchrun")
    assert missing.returncode == 2 and "no run in" in missing.stderr and "reason logs" in missing.stderr


def test_an_sdk_budget_too_small_for_one_call_says_so_in_its_stop():
    from orchestrator import Budget, Reasoner, ScriptedModel

    result = Reasoner(ScriptedModel(CHAIN), "chain", budget=Budget(max_tokens=500), save_trajectory=False).solve(Q)
    assert result.stop_reason == "budget_tokens" and result.usage.calls == 0
    assert result.error == "budget: 500 tokens is too small for one call (one is projected at 600 tokens " \
                           "before any is made)"


def test_a_bad_value_through_dash_o_is_a_usage_error_not_a_traceback():
    result = reason("-m", "http://127.0.0.1:9/v1#m", "-o", "max_tokens", "8", Q)
    assert result.returncode == 2
    [line] = errors(result.stderr)
    assert "max_tokens_per_call: Input should be greater than or equal to 16 (got 8)" in line
    assert "Traceback" not in result.stderr
