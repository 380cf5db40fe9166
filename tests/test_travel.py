"""Runs come home: `train all` on Dask workers that share no disk with the client.

Each worker of a two-worker cluster gets a results folder of its own (per-worker environment), so
neither shares one with the test process (the client). The workers' folders start with a copy of
this session's smoke runs (in a full run the reference notebooks trained them), less the judge, one
GAN setting and the VAE: those train on the workers (the judge is handed to the worker that trains
the GAN, through the task's dependency), the rest are reused there; all of them must arrive here.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mnistgen import edition, executor, runs
from mnistgen.config import make_config

pytestmark = pytest.mark.slow
TRAINED_THERE = ("classifier arch=lenet", "gan batch_size=64", "vae")


def _cluster(tmp_path, data_root):
    from dask.distributed import Nanny, Scheduler, SpecCluster

    def env(i):
        return {"MNISTGEN_RESULTS": str(tmp_path / f"worker{i}"), "MNISTGEN_DATA": str(data_root),
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    workers = {f"w{i}": {"cls": Nanny, "options": {"nthreads": 1, "env": env(i), "host": "127.0.0.1"}}
               for i in range(2)}
    return SpecCluster(scheduler={"cls": Scheduler, "options": {"dashboard_address": "127.0.0.1:0",
                                                               "host": "127.0.0.1"}},
                       workers=workers, silence_logs=50)


def test_runs_trained_on_workers_without_a_shared_disk_come_home_verified(tmp_path, data_root):
    ids = edition.run_ids("smoke")
    here = runs.results_dir("smoke") / "runs"
    skip = {rid for g in TRAINED_THERE for rid in ids[g]}
    for i in range(2):
        dst = tmp_path / f"worker{i}" / "smoke" / "runs"
        dst.mkdir(parents=True)
        for rs in ids.values():
            for rid in rs:
                if rid not in skip and (here / rid / "manifest.json").is_file():
                    shutil.copytree(here / rid, dst / rid, ignore=shutil.ignore_patterns(".*"))
    client_root = tmp_path / "client"
    with _cluster(tmp_path, data_root) as cluster:
        results = edition.train_profile("smoke", scheduler=cluster.scheduler_address, progress=False,
                                        results_root=client_root)
        arrived = runs.results_dir("smoke", client_root) / "runs"
        for name, rs in ids.items():
            r = results[name]
            assert str(tmp_path / "worker") in r["results"], r  # trained (or reused) away from here
            for rid in rs:
                theirs = tmp_path / r["results"].split("/")[-1] / "smoke" / "runs" / rid
                for f in ("checkpoint.pt", "manifest.json", "history.json"):
                    assert (arrived / rid / f).read_bytes() == (theirs / f).read_bytes(), (rid, f)
        assert {p.name for p in arrived.iterdir()} == {rid for rs in ids.values() for rid in rs}
        assert not list(arrived.parent.glob(".runs-arriving-*"))  # no staging left behind

        # With the copy-back off the workers keep their runs, and the command says which are missing,
        # who trained them and where; the client's folder gets nothing.
        with pytest.raises(executor.ClusterError) as e:
            edition.train_profile("smoke", scheduler=cluster.scheduler_address, progress=False,
                                  results_root=tmp_path / "client2", copy_back=False)
    msg = str(e.value)
    assert f"{sum(len(r) for r in ids.values())} run(s) the workers reported trained are not in" in msg
    assert ids["vae"][0] in msg and "trained by" in msg and str(tmp_path / "worker") in msg
    assert not [p for p in (tmp_path / "client2").rglob("*") if p.is_file()]

    # what a worker trained is the training this process does (one thread, as the workers)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = runs.get_runs(make_config("vae", "smoke"), "smoke", [0, 1], results_root=tmp_path / "local",
                              data_root=data_root)
    finally:
        torch.set_num_threads(threads)
    home = runs.get_runs(make_config("vae", "smoke"), "smoke", [0, 1], results_root=client_root, data_root=data_root)
    for a, b in zip(local, home):
        for x, y in zip(a.models["vae"].state_dict().values(), b.models["vae"].state_dict().values()):
            assert torch.equal(x, y)


def test_damaged_runs_on_the_wire_are_refused_whole(tmp_path):
    """A byte changed in transit, or a file announced and not sent: nothing is installed."""
    from mnistgen.transfer import TransferError, install_runs, pack_runs

    rid = "vae-seed0-0123456789"
    src = tmp_path / "smoke"
    d = src / "runs" / rid
    d.mkdir(parents=True)
    for f, data in (("manifest.json", json.dumps(MANIFEST).encode()), ("history.json", b"[]"),
                    ("checkpoint.pt", b"x" * 100)):
        (d / f).write_bytes(data)
    packed = pack_runs(src, [rid])
    assert install_runs(packed, tmp_path / "ok" / "smoke", "test") == [rid]
    bad = {"files": {**packed["files"], f"{rid}/checkpoint.pt": b"y" * 100}, "sums": packed["sums"]}
    with pytest.raises(TransferError, match=f"{rid}/checkpoint.pt does not match its SHA-256"):
        install_runs(bad, tmp_path / "bad" / "smoke", "test")
    short = {"files": {k: v for k, v in packed["files"].items() if not k.endswith(".pt")}, "sums": packed["sums"]}
    with pytest.raises(TransferError, match="checkpoint.pt was announced but not sent"):
        install_runs(short, tmp_path / "short" / "smoke", "test")
    assert not [p for p in (tmp_path / "bad").rglob("*") if p.is_file()]
    assert not [p for p in (tmp_path / "short").rglob("*") if p.is_file()]


# A finished run's manifest as runs._finish writes it (the schema install_runs checks).
MANIFEST = {"run_id": "vae-seed0-0123456789", "status": "complete", "model": "vae", "profile": "smoke",
            "config": {"seed": 0, "epochs": 1}, "seed": 0, "code_version": "0123456789ab", "git_commit": "abc",
            "device": "cpu", "device_name": "x86_64 CPU, 1 torch threads", "versions": {"torch": "2"}, "epochs": 1,
            "trained_with_seeds": [0], "wall_seconds": 1.0, "session_seconds": 1.0, "final": {}, "finished": "today"}
