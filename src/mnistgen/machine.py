"""The machine a run was trained on, on record: what can change the last bits of what it computes.

Two machines give bitwise the same training only with the same kernels: the CPU's vector
instruction set (torch, MKL and oneDNN pick their code paths by it), the number of threads (it
changes how sums are split), and the library versions. ``this_machine()`` reads them once, where
training finishes; every run's manifest, every part and the edition carry the record, and
``edition verify`` prints the shipped and the local one side by side. A field nobody recorded is
``"unknown"``, never guessed (``from_manifest``: runs trained before the record existed).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

import torch

UNKNOWN = "unknown"
FIELDS = ("cpu", "isa", "torch_isa", "cores", "torch_threads", "gpu", "os", "python", "torch", "numpy", "mkl",
          "onednn")
LABELS = {"cpu": "CPU", "isa": "vector ISA", "torch_isa": "torch's kernels", "cores": "cores",
          "torch_threads": "torch threads", "gpu": "GPU", "os": "OS", "python": "Python", "torch": "torch",
          "numpy": "NumPy", "mkl": "MKL", "onednn": "oneDNN"}


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux), else {}."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def vector_isa(flags: str) -> str:
    """The widest x86 vector instruction set a CPU's flags name: avx512, avx2, avx or sse (else unknown)."""
    have = set(flags.split())
    for isa, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx"), ("sse", "sse2")):
        if flag in have:
            return isa
    return UNKNOWN


def _library_version(pattern: str) -> str:
    m = re.search(pattern, torch.__config__.show())
    return m.group(1) if m else UNKNOWN


def this_machine(device: torch.device | None = None) -> dict[str, Any]:
    """The record of this machine (and of ``device``, where it is a GPU)."""
    import numpy

    info = _cpuinfo()
    gpu = torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" else "none"
    return {
        "cpu": info.get("model name") or platform.processor() or platform.machine() or UNKNOWN,
        "isa": vector_isa(info.get("flags", "")) if info else UNKNOWN,
        "torch_isa": torch.backends.cpu.get_cpu_capability().lower(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or UNKNOWN),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "mkl": _library_version(r"Math Kernel Library Version ([\d.]+)"),
        "onednn": _library_version(r"(?:MKL-DNN|oneDNN) v([\w.]+)"),
    }


def from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The machine record of a finished run: its own where it has one, else what the fields every
    manifest carries say (the Python, torch and NumPy versions; the torch threads from the device
    name, "x86_64 CPU, 2 torch threads"), "unknown" for the rest."""
    if isinstance(manifest.get("machine"), dict):
        return {k: manifest["machine"].get(k, UNKNOWN) for k in FIELDS}
    versions = manifest.get("versions") or {}
    name = str(manifest.get("device_name", ""))
    threads = re.search(r"(\d+) torch threads?", name)
    out: dict[str, Any] = {k: UNKNOWN for k in FIELDS}
    out.update({"python": versions.get("python", UNKNOWN), "torch": versions.get("torch", UNKNOWN),
                "numpy": versions.get("numpy", UNKNOWN),
                "torch_threads": int(threads.group(1)) if threads else UNKNOWN})
    if manifest.get("device") == "cpu":
        out["gpu"] = "none"
    elif manifest.get("device", "").startswith("cuda"):
        out["gpu"] = name or UNKNOWN
    return out


def merge(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record for several runs: a field's value where they agree, the values joined by " / "
    where not (the first three and how many there are, so that a record stays a short text)."""
    out: dict[str, Any] = {}
    for k in FIELDS:
        values = sorted({str(r.get(k, UNKNOWN)) for r in records}) or [UNKNOWN]
        if len(values) == 1:
            out[k] = records[0].get(k, UNKNOWN) if records else UNKNOWN
        else:
            out[k] = (" / ".join(v[:60] for v in values[:3]) + (f" / … ({len(values)} values)" if len(values) > 3 else ""))
    return out


def threads(n: Any) -> str:
    return f"{n} torch thread{'' if str(n) == '1' else 's'}"


def describe(record: dict[str, Any]) -> str:
    """One line, unrecorded fields left out: "AMD EPYC (avx2; torch's kernels avx2), 2 cores, 2 torch
    threads, Linux-..., Python 3.11.7, torch 2.14.1, NumPy 2.4.6, MKL 2024.2, oneDNN 3.12.0"."""
    def known(k: str) -> bool:
        return str(record.get(k, UNKNOWN)) not in (UNKNOWN, "")

    def get(k: str) -> str:
        return str(record.get(k, UNKNOWN))

    if known("cpu"):
        isa = "; ".join(x for x in ([get("isa")] if known("isa") else [])
                        + ([f"torch's kernels {get('torch_isa')}"] if known("torch_isa") else []))
        parts = [get("cpu") + (f" ({isa})" if isa else "")]
    else:
        parts = ["CPU not recorded"]
    if known("gpu") and get("gpu") != "none":
        parts.insert(0, get("gpu"))
    parts += [f"{get('cores')} cores"] if known("cores") else []
    parts += [threads(record["torch_threads"])] if known("torch_threads") else []
    parts += [get("os")] if known("os") else []
    parts += [f"{LABELS[k]} {get(k)}" for k in ("python", "torch", "numpy", "mkl", "onednn") if known(k)]
    return ", ".join(parts)
