"""Which backend and device run a model's calls: llama.cpp's build (cpu, cuda, metal, vulkan, ...) and the
chip it offloads to, or, for a remote model, its server. `reason models` and every trajectory header show it.

The devices are read from ggml's backend registry (`ggml_backend_dev_*` in the libraries llama-cpp-python
ships; the Python bindings have no wrapper for them), so no weights are loaded to answer.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import ConfigError

CPU_TYPE = 0  # enum ggml_backend_dev_type: GGML_BACKEND_DEVICE_TYPE_CPU


def gpu_layers_from_env() -> int | None:
    """REASON_LOCAL_GPU_LAYERS: how many layers to offload (`all` or -1: every layer; 0: none); None if unset."""
    value = os.environ.get("REASON_LOCAL_GPU_LAYERS", "").strip().lower()
    if not value:
        return None
    if value == "all":
        return -1
    if not re.fullmatch(r"-?\d+", value) or int(value) < -1:
        raise ConfigError(f"REASON_LOCAL_GPU_LAYERS must be `all`, -1 (all) or a number of layers, not {value!r}")
    return int(value)


def default_gpu_layers() -> int:
    """REASON_LOCAL_GPU_LAYERS, else every layer (-1) on a GPU build of llama.cpp and none on a CPU build."""
    layers = gpu_layers_from_env()
    if layers is None:
        layers = -1 if supports_gpu_offload() else 0
    return layers


@functools.cache
def supports_gpu_offload() -> bool:
    """Whether the installed llama.cpp was built with a GPU backend (scripts/setup.sh picks it)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


@functools.cache
def llama_devices() -> tuple[tuple[str, str, int], ...]:
    """(name, description, type) of each device llama.cpp can use, e.g. ("CUDA0", "NVIDIA H200", 1)."""
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    try:
        ggml, base = ctypes.CDLL(str(lib / "libggml.so")), ctypes.CDLL(str(lib / "libggml-base.so"))
        ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
        ggml.ggml_backend_dev_get.restype, ggml.ggml_backend_dev_get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        for fn in (base.ggml_backend_dev_name, base.ggml_backend_dev_description):
            fn.restype, fn.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
        base.ggml_backend_dev_type.restype, base.ggml_backend_dev_type.argtypes = ctypes.c_int, [ctypes.c_void_p]
    except (OSError, AttributeError):  # another platform's library names, or a build without the registry
        return ()
    devices = []
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        devices.append((base.ggml_backend_dev_name(dev).decode(), base.ggml_backend_dev_description(dev).decode(),
                        int(base.ggml_backend_dev_type(dev))))
    return tuple(devices)


def llama_backend() -> str:
    """The GPU backend llama.cpp was built with (`cuda`, `metal`, `vulkan`, ...), else `cpu`."""
    if not supports_gpu_offload():
        return "cpu"
    for name, _, kind in llama_devices():
        if kind != CPU_TYPE:
            return re.sub(r"\d+$", "", name).lower()
    return "gpu"


def local_device(gpu_layers: int) -> dict[str, Any]:
    """The backend and device a local model with `gpu_layers` offloaded layers runs on."""
    devices = llama_devices()
    gpus = [desc for _, desc, kind in devices if kind != CPU_TYPE]
    cpus = [desc for _, desc, kind in devices if kind == CPU_TYPE]
    on_gpu = gpu_layers != 0 and supports_gpu_offload() and bool(gpus)
    return {
        "backend": llama_backend(),
        "device": ", ".join(gpus) if on_gpu else (cpus[0] if cpus else "CPU"),
        "gpu_layers": "all" if on_gpu and gpu_layers < 0 else (gpu_layers if on_gpu else 0),
    }


def describe(model: Any) -> dict[str, Any]:
    """{"backend", "device"} of any model: a local model's llama.cpp device, a server's host (never its key
    or any credentials in its URL), or the provider's name."""
    inner = getattr(model, "inner", None)  # a wrapper (the completion cache) runs on its inner model's device
    if inner is not None:
        return describe(inner)
    if hasattr(model, "device_info"):
        return model.device_info()
    base_url = getattr(model, "base_url", None)
    host = urlsplit(base_url).netloc.rsplit("@", 1)[-1] if base_url else None
    from orchestrator.models import provider_of

    backend = getattr(model, "server", None) or provider_of(str(getattr(model, "name", "model")))
    if host:
        return {"backend": backend, "device": f"remote {host}"}
    return {"backend": backend, "device": "none" if backend in ("fake", "replay") else "remote"}
