"""Subnormals flushed in every thread of torch's CPU pool (numerics.py), measured in a fresh process
whose pool has already started before the call, as in a notebook."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mnistgen import numerics

SCRIPT = textwrap.dedent("""
    import json, torch
    from mnistgen import numerics
    torch.set_num_threads(2)
    x = torch.randn(512, 512); (x @ x).sum()       # the pool exists before anyone asks to flush
    before = numerics.flushes_subnormals()
    torch.set_flush_denormal(True)                 # torch's own call: the calling thread only
    main_only = numerics.flushes_subnormals()
    ok = numerics.flush_subnormals()
    after = numerics.flushes_subnormals()
    print(json.dumps({"before": list(before.values()), "main_only": list(main_only.values()),
                      "ok": ok, "after": list(after.values())}))
""")

needs_ftz = pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU has no FTZ/DAZ")
needs_omp = pytest.mark.skipif(numerics._openmp_parallel() is None, reason="torch's pool is not an OpenMP runtime")


@needs_ftz
@needs_omp
def test_every_pool_thread_flushes_after_the_call_even_when_the_pool_started_first():
    import json
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="2")).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert len(r["before"]) == 2, "the probe must reach both threads of the pool"
    assert r["before"] == [False, False]
    # the trap this module exists for: torch's call leaves the worker thread with subnormals
    assert sorted(r["main_only"]) == [False, True]
    assert r["ok"] is True and r["after"] == [True, True]


@needs_ftz
def test_a_flushing_thread_reads_subnormals_as_zero_and_leaves_normals_alone():
    try:
        numerics.flush_subnormals()
        tiny = torch.full((8,), 1e-40)
        assert (tiny * 1.0 == 0).all()
        assert (torch.full((8,), 1e-37) * 1.0 == 1e-37).all()  # smallest normal is 1.18e-38
    finally:
        numerics.in_each_pool_thread(lambda: torch.set_flush_denormal(False))
