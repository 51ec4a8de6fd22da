"""`scripts/llama_cmake_args.sh` picks the llama.cpp backend: driven with fake `nvidia-smi` and `nvcc` on the PATH."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "llama_cmake_args.sh"


def cpu_flags() -> str:
    """The flags the script has always printed for this CPU (before it knew of GPUs)."""
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line
            break
    words = set(flags.split())

    def has(flag: str) -> str:
        return "ON" if flag in words else "OFF"

    return (
        "-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
        f" -DGGML_AVX={has('avx')} -DGGML_AVX2={has('avx2')} -DGGML_FMA={has('fma')} -DGGML_F16C={has('f16c')}"
        f" -DGGML_AVX512={has('avx512f')} -DGGML_AVX512_VBMI={has('avx512vbmi')}"
        f" -DGGML_AVX512_VNNI={has('avx512_vnni')} -DGGML_AVX_VNNI={has('avx_vnni')} -DGGML_BMI2={has('bmi2')}"
    )


def tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def run(tmp_path: Path, *args: str, gpu: str | None = None, nvcc: bool = False, **env: str
        ) -> subprocess.CompletedProcess[str]:
    """The script with only fakes and the basic system tools on the PATH (not /usr/local/bin, where a
    real nvcc may be). `gpu`: "ok" for an nvidia-smi that lists a GPU, "broken" for one that fails."""
    fakes = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh folder: no fake from an earlier call stays
    if gpu == "ok":
        tool(fakes, "nvidia-smi", 'echo "GPU 0: NVIDIA H200 (UUID: GPU-0)"')
    elif gpu == "broken":
        tool(fakes, "nvidia-smi", 'echo "NVIDIA-SMI has failed: no driver" >&2; exit 9')
    if nvcc:
        tool(fakes, "nvcc", 'echo "Cuda compilation tools, release 13.0, V13.0.48"')
    environ = {"PATH": f"{fakes}:/usr/bin:/bin", "CUDA_HOME": str(tmp_path / "no-cuda"), **env}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environ,
                          check=False, timeout=30)


def flags(tmp_path: Path, **kwargs) -> str:
    proc = run(tmp_path, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_no_gpu_gives_exactly_the_cpu_flags_and_the_old_cache_key(tmp_path):
    assert flags(tmp_path) == cpu_flags()
    assert run(tmp_path, "--backend").stdout.strip() == "cpu"
    # setup.sh keyed its wheel cache by this hash before the CUDA backend existed: a CPU machine keeps its wheel.
    old_key = hashlib.sha256(f"0.3.36 {cpu_flags()}\n".encode()).hexdigest()[:16]
    assert run(tmp_path, "--key", "0.3.36").stdout.strip() == old_key


def test_a_gpu_and_nvcc_build_for_cuda(tmp_path):
    out = flags(tmp_path, gpu="ok", nvcc=True)
    assert out == cpu_flags() + " -DGGML_CUDA=on"
    assert run(tmp_path, "--backend", gpu="ok", nvcc=True).stdout.strip() == "cuda"


def test_cuda_architectures_are_passed_on(tmp_path):
    out = flags(tmp_path, gpu="ok", nvcc=True, REASON_CUDA_ARCHITECTURES="90")
    assert out.endswith(" -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90")


@pytest.mark.parametrize(("gpu", "nvcc"), [(None, True), ("broken", True), ("ok", False)])
def test_cpu_unless_both_a_working_gpu_and_nvcc(tmp_path, gpu, nvcc):
    assert flags(tmp_path, gpu=gpu, nvcc=nvcc) == cpu_flags()


def test_the_cache_key_differs_by_backend(tmp_path):
    cpu = run(tmp_path, "--key", "0.3.36").stdout.strip()
    cuda = run(tmp_path, "--key", "0.3.36", gpu="ok", nvcc=True).stdout.strip()
    assert cuda.startswith("cuda-") and cuda != "cuda-" + cpu
    arch90 = run(tmp_path, "--key", "0.3.36", gpu="ok", nvcc=True, REASON_CUDA_ARCHITECTURES="90").stdout.strip()
    assert arch90 not in (cpu, cuda)


def test_the_backend_can_be_forced_either_way(tmp_path):
    assert flags(tmp_path, gpu="ok", nvcc=True, REASON_LLAMA_BACKEND="cpu") == cpu_flags()
    assert run(tmp_path, "--key", "0.3.36", gpu="ok", nvcc=True, REASON_LLAMA_BACKEND="cpu").stdout == \
        run(tmp_path, "--key", "0.3.36").stdout
    # a build host without a GPU can still build the CUDA wheel
    assert flags(tmp_path, nvcc=True, REASON_LLAMA_BACKEND="cuda") == cpu_flags() + " -DGGML_CUDA=on"


def test_forcing_cuda_without_nvcc_or_a_bad_backend_is_refused(tmp_path):
    proc = run(tmp_path, gpu="ok", REASON_LLAMA_BACKEND="cuda")
    assert proc.returncode == 2 and "nvcc is not found" in proc.stderr
    proc = run(tmp_path, REASON_LLAMA_BACKEND="rocm")
    assert proc.returncode == 2 and "cpu or cuda" in proc.stderr


def test_nvcc_under_cuda_home_is_found_and_named_to_cmake(tmp_path):
    home = tmp_path / "cuda"
    (home / "bin").mkdir(parents=True)
    tool(home / "bin", "nvcc", 'echo "Cuda compilation tools, release 12.4, V12.4.131"')
    out = flags(tmp_path, gpu="ok", CUDA_HOME=str(home))
    assert out == cpu_flags() + f" -DGGML_CUDA=on -DCMAKE_CUDA_COMPILER={home}/bin/nvcc"


def test_setup_keys_its_wheel_cache_with_the_script():
    setup = (SCRIPT.parent / "setup.sh").read_text()
    assert 'key=$(bash scripts/llama_cmake_args.sh --key "$LLAMA_VERSION")' in setup
    assert os.access(SCRIPT, os.R_OK)


# --- the local adapter on this machine's llama.cpp build (a CPU build in CI) ------------------------------
from orchestrator.models.cache import CachedModel  # noqa: E402
from orchestrator.models.device import default_gpu_layers, describe, llama_devices, supports_gpu_offload  # noqa: E402
from orchestrator.models.local import LocalModel  # noqa: E402

cpu_build = pytest.mark.skipif(supports_gpu_offload(), reason="checks what a CPU build of llama.cpp does")


@cpu_build
def test_a_cpu_build_offloads_nothing_and_says_so(monkeypatch):
    monkeypatch.delenv("REASON_LOCAL_GPU_LAYERS", raising=False)
    model = LocalModel("local/smollm2-135m")
    assert model.gpu_layers == 0  # what load_llama hands llama.cpp: as before the GPU backend existed
    info = model.device_info()
    cpus = [desc for _, desc, kind in llama_devices() if kind == 0]
    assert info == {"backend": "cpu", "device": cpus[0], "gpu_layers": 0} and cpus[0]
    # asking for layers on a CPU build offloads none, and the device says so
    assert LocalModel("local/smollm2-135m", gpu_layers=-1).device_info()["gpu_layers"] == 0


def test_gpu_layers_come_from_the_option_then_the_environment(monkeypatch):
    monkeypatch.setenv("REASON_LOCAL_GPU_LAYERS", "all")
    assert LocalModel("local/smollm2-135m").gpu_layers == -1 and default_gpu_layers() == -1
    monkeypatch.setenv("REASON_LOCAL_GPU_LAYERS", "12")
    assert LocalModel("local/smollm2-135m").gpu_layers == 12
    assert LocalModel("local/smollm2-135m", gpu_layers=3).gpu_layers == 3
    monkeypatch.setenv("REASON_LOCAL_GPU_LAYERS", "many")
    with pytest.raises(ConfigError, match="REASON_LOCAL_GPU_LAYERS"):
        LocalModel("local/smollm2-135m")
    with pytest.raises(ConfigError, match="gpu_layers"):
        LocalModel("local/smollm2-135m", gpu_layers=-2)


@pytest.mark.slow
def test_the_loaded_model_has_the_layers_it_was_given(monkeypatch):
    """On a CPU build llama.cpp gets n_gpu_layers=0, as before; on a GPU build every layer (-1)."""
    monkeypatch.delenv("REASON_LOCAL_GPU_LAYERS", raising=False)
    llm, _ = LocalModel("local/smollm2-135m", n_threads=2).llama()
    expected = 0x7FFFFFFF if supports_gpu_offload() else 0  # llama-cpp-python writes -1 as INT32_MAX
    assert llm.model_params.n_gpu_layers == expected


def test_every_model_names_its_backend_and_device(tmp_path):
    from orchestrator import ScriptedModel
    from orchestrator.models import get_model

    local = LocalModel("local/smollm2-135m")
    assert describe(CachedModel(local, tmp_path)) == local.device_info()  # the cache runs on its model
    assert describe(ScriptedModel(["x"])) == {"backend": "fake", "device": "none"}
    remote = get_model("http://user:secret@10.0.0.5:8000/v1#m")
    assert describe(remote) == {"backend": "http", "device": "remote 10.0.0.5:8000"}  # no credentials


def test_trajectory_headers_record_backend_and_device(tmp_path):
    import json

    from orchestrator import Reasoner, ScriptedModel

    result = Reasoner(ScriptedModel(["Final answer: 4"]), strategy="plain", runs_dir=tmp_path).solve("2+2?")
    header = json.loads(Path(result.trajectory_path).read_text().splitlines()[0])
    assert header["backend"] == "fake" and header["device"] == "none"


def test_reason_models_lists_the_backend_and_device_of_each_local_model(monkeypatch):
    import json
    import sys

    monkeypatch.delenv("REASON_LOCAL_GPU_LAYERS", raising=False)
    reason = Path(sys.executable).parent / "reason"
    listed = subprocess.run([str(reason), "models", "--json"], capture_output=True, text=True, check=True, timeout=60)
    rows = json.loads(listed.stdout)["embedded"]
    expected = "cuda" if supports_gpu_offload() else "cpu"
    assert rows and all(r["backend"] == expected and r["device"] for r in rows)
    text = subprocess.run([str(reason), "models"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert f"runs on {expected}: " in text
