"""Subnormal floats flushed to zero in every CPU thread that computes for us.

Why: a trained model makes subnormals (float32 magnitudes below 1.2e-38) all the time: the
decoder's and generator's logits for always-black pixels reach about -90, their sigmoid is
exp(-90) ~ 1e-39, and those values flow into the backward products and Adam's moments. x86 cores
handle a subnormal operand in microcode, tens of times slower than a normal one: measured here, a
trained VAE's step took 44.5 ms against 16.6 ms for a fresh one (``make bench``'s bill times
fresh models). Flushing them (FTZ: subnormal results become 0; DAZ: subnormal inputs read as 0)
changes no number the report shows: a subnormal is below float32's resolution of anything it is
added to, and the models' outputs are probabilities far above it.

``torch.set_flush_denormal`` sets the flags (MXCSR) of the calling thread only, while the
products run in the OpenMP pool's threads too. Threads copy the flags of the thread that creates
them, so the pool is right if it starts after the call, but a notebook or a test has usually
started it already. ``flush_subnormals`` therefore also sets the flags inside one parallel region
of the pool, where each of its threads runs the call itself.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from collections.abc import Callable
from functools import cache

import torch

logger = logging.getLogger(__name__)

_REGION_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


@cache
def _openmp_parallel() -> Callable[[Callable[[], None], int], None] | None:
    """``run(fn, n)``: call ``fn`` once in each of ``n`` threads of torch's OpenMP pool (GNU's
    ``GOMP_parallel``, also exported by LLVM's and Intel's runtimes); None if no such runtime is
    loaded (then torch's pool is not OpenMP, or this is not Linux)."""
    if not sys.platform.startswith("linux") or "OpenMP" not in torch.__config__.parallel_info():
        return None
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps
                       if any(n in line for n in ("libgomp", "libomp", "libiomp5"))})
    for path in libs:
        try:
            region = ctypes.CDLL(path).GOMP_parallel  # the loaded library: dlopen returns its handle
        except (OSError, AttributeError):
            continue
        region.argtypes = [_REGION_FN, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        region.restype = None

        def run(fn: Callable[[], None], n: int, region=region) -> None:
            callback = _REGION_FN(lambda _: fn())  # ctypes takes the GIL in each thread
            region(callback, None, n, 0)
        return run
    return None


def in_each_pool_thread(fn: Callable[[], object]) -> dict[int, object]:
    """``fn()`` run once in every thread of torch's CPU pool (the calling thread among them);
    its results by native thread id. Without an OpenMP runtime to reach: the calling thread's only."""
    out: dict[int, object] = {}

    def call() -> None:
        out[threading.get_native_id()] = fn()
    run = _openmp_parallel()
    if run is None:
        call()
    else:
        run(call, torch.get_num_threads())
    return out


def flush_subnormals() -> bool:
    """Flush subnormals to zero in this thread and every thread of torch's CPU pool; cheap, and
    idempotent. False if this CPU cannot (torch's own check: no FTZ/DAZ), the models then run
    with IEEE subnormals, slower, to numbers equal but for bits below float32's resolution."""
    if not torch.set_flush_denormal(True):
        return False
    results = in_each_pool_thread(lambda: torch.set_flush_denormal(True))
    if _openmp_parallel() is None and torch.get_num_threads() > 1:
        logger.warning("no OpenMP runtime found to reach torch's worker threads: subnormals are "
                       "flushed in the calling thread only (slower training on trained models)")
    return all(results.values())


def flushes_subnormals() -> dict[int, bool]:
    """Per thread of torch's CPU pool: does it flush? (Adds two subnormals inside that thread; a
    flushing thread gets 0.) For tests and benchmarks."""
    def probe() -> bool:
        tiny = torch.full((64,), 1e-40)  # subnormal in float32
        return bool(((tiny + tiny) == 0).all())
    return {k: bool(v) for k, v in in_each_pool_thread(probe).items()}
