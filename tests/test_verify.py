"""`mnistgen edition verify`: a shipped group retrained here and compared with its part, against
crafted parts whose differences are known (an oracle), and end to end on a tiny smoke group."""

import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from mnistgen import parts, runs, verify

REPO = Path(__file__).resolve().parents[1]


def _run_folder(root: Path, rid: str, history: list[dict], weights: dict | None, metrics: dict | None) -> None:
    d = root / "runs" / rid
    d.mkdir(parents=True)
    (d / "history.json").write_text(json.dumps(history))
    (d / "manifest.json").write_text(json.dumps({"epochs": len(history), "final": history[-1]}))
    if weights is not None:
        runs.write_checkpoint(d / runs.SHIPPED_WEIGHTS, {"format": runs.CHECKPOINT_FORMAT,
                                                          "state": {"models": weights, "snapshots": []}})
    if metrics is not None:
        (d / "metrics-0123456789.json").write_text(json.dumps(metrics))


def _history(seed: int, bump: tuple[int, float] | None = None) -> list[dict]:
    rows = [{"epoch": e, "d_loss": 0.5 + 0.01 * e + seed, "seconds": 1.0 + seed * e} for e in (1, 2, 3)]
    if bump is not None:
        rows[bump[0] - 1]["d_loss"] += bump[1]
    return rows


def _pair(tmp_path, change=None):
    """Two parts of three runs; ``change`` alters the second ('here') in one known way."""
    for side in ("shipped", "here"):
        for seed in range(3):
            w = {"G": {"w": torch.arange(4, dtype=torch.float32) + seed}}
            hist = _history(seed)
            metrics = {"fid": 10.0 + seed, "n_samples": 100}
            if side == "here" and change == "tensor" and seed == 1:
                w["G"]["w"][2] = torch.nextafter(w["G"]["w"][2], torch.tensor(100.0))
            if side == "here" and change == "history" and seed == 2:
                hist = _history(seed, bump=(2, 1e-6))
            if side == "here" and change == "metric" and seed == 0:
                metrics["fid"] += 0.5
            if side == "here" and change == "zero" and seed == 0:
                w["G"]["w"][0] = -0.0  # equal to 0.0 by value, not by its bits
            if side == "here" and change == "seconds":
                hist = [{**r, "seconds": 99.0} for r in hist]
            _run_folder(tmp_path / side, f"gan-seed{seed}-00000000aa", hist, w, metrics)
    return verify.compare_parts("g", tmp_path / "shipped", tmp_path / "here",
                                [f"gan-seed{s}-00000000aa" for s in range(3)])


def test_identical_parts_are_equal_and_wall_times_do_not_count(tmp_path):
    check = _pair(tmp_path, "seconds")
    assert check.equal and (check.tensors, check.history_rows, check.metrics) == (3, 9, 3)


def test_one_ulp_in_one_tensor_is_found_with_its_size(tmp_path):
    check = _pair(tmp_path, "tensor")
    assert not check.equal and check.tensors_differ == 1
    assert check.tensor_max_diff == pytest.approx(torch.finfo(torch.float32).eps * 2)  # 1 ulp at 2.0-4.0
    assert check.first_epoch_differs is None and not check.metrics_differ


def test_a_signed_zero_is_a_different_bit_pattern(tmp_path):
    check = _pair(tmp_path, "zero")
    assert not check.equal and check.tensors_differ == 1 and check.tensor_max_diff == 0.0


def test_a_runs_own_cache_named_by_its_id_is_compared_across_the_seeds(tmp_path):
    """nll-<key>.json: the key holds the run's id, so each seed's file has another name."""
    for side, bump in (("shipped", 0.0), ("here", 0.2)):
        for seed in range(3):
            rid = f"vae-seed{seed}-00000000aa"
            d = tmp_path / side / "runs" / rid
            d.mkdir(parents=True)
            (d / "history.json").write_text(json.dumps(_history(seed)))
            (d / "manifest.json").write_text(json.dumps({"epochs": 3}))
            (d / f"nll-{seed}0000000000.json").write_text(json.dumps({"nll": 90.0 + seed + (bump if seed == 1 else 0)}))
    check = verify.compare_parts("vae", tmp_path / "shipped", tmp_path / "here",
                                 [f"vae-seed{s}-00000000aa" for s in range(3)])
    assert check.metrics == 3 and check.metrics_differ == {"nll nll": pytest.approx(0.2)}


def test_a_history_parting_at_epoch_two_is_named_with_its_field(tmp_path):
    check = _pair(tmp_path, "history")
    assert check.first_epoch_differs == 2 and check.history_max_diff[1] == "d_loss"
    assert check.history_max_diff[0] == pytest.approx(1e-6, rel=1e-6)
    assert any("histories part at epoch 2" in line for line in check.lines())


def test_a_metric_difference_is_given_in_units_of_the_seed_spread(tmp_path):
    check = _pair(tmp_path, "metric")
    # the shipped FIDs of the three seeds are 10, 11, 12: sd 1, so 0.5 FID is 0.5 seed sd
    assert check.metrics_differ == {"metrics fid": pytest.approx(0.5)}
    # the manifests' final rows do not hold the metric, the histories agree: only the metric differs
    assert not check.problems and check.first_epoch_differs is None


def test_the_default_set_is_the_cheapest_group_of_each_family_within_the_budget(tmp_path):
    record = {"profile": "smoke", "format": 1, "code_version": "0123456789ab", "parts": {}}
    for name, secs in [("gan objective k=5", 12), ("gan batch_size=64", 5000), ("classifier arch=lenet", 90),
                       ("classifier arch=vgg", 140), ("iwae objective=iwae k=1", 356), ("vae", 870),
                       ("acgan", 2700)]:
        record["parts"][name] = {"file": "x.tar.gz", "sha256": "0" * 64, "bytes": 1, "runs": ["gan-seed0-0000000000"],
                                 "exported": "now", "training_wall_seconds": secs, "device_name": "cpu"}
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / parts.PARTS_FILE).write_text(json.dumps(record))
    chosen, left = verify.default_groups("smoke", tmp_path, budget_s=600)
    assert chosen == ["gan objective k=5", "classifier arch=lenet", "iwae objective=iwae k=1"]
    assert [line.split(":")[0] for line in left] == ["vae", "acgan"]


def _forge(editions: Path, name: str, change) -> None:
    """Rewrite the shipped part of group ``name`` with ``change(files)`` applied to its members, its
    SHA256SUMS and parts.json made to match, as a careful forger would."""
    import hashlib

    from mnistgen.bundle import _write_tar

    record = json.loads((editions / "smoke" / parts.PARTS_FILE).read_text())
    path = editions / "smoke" / record["parts"][name]["file"]
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    change(files)
    files.pop("SHA256SUMS")
    files["SHA256SUMS"] = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in sorted(files.items())).encode()
    with open(path, "wb") as f:
        _write_tar(f, files)
    record["parts"][name]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (editions / "smoke" / parts.PARTS_FILE).write_text(json.dumps(record))


@pytest.mark.slow
def test_verify_retrains_a_shipped_group_finds_it_equal_and_finds_a_forged_part(tmp_path):
    """End to end through the command line: a smoke group and its judges trained and shipped (by
    processes of their own, in a results folder of their own, as a user would: runs a notebook
    kernel left in the tests' results folder were computed with its arithmetic pinned to AVX2,
    and on a CPU with AVX-512 a retraining differs from them in the last bits), then the group
    retrained by `edition verify` in a scratch folder and measured there by the shipped judges:
    equal, exit 0. Then forged parts, sums and parts.json made to match: one history value of the
    group (exit 1, naming the epoch), and the shipped judge's weights (exit 1: the group is
    measured by the judge that was shipped, not one verify trains again)."""
    name = "gan objective saturating=True k=1"
    judges = ["classifier arch=lenet", "classifier arch=vgg"]
    editions = tmp_path / "editions"
    env = {**os.environ, "MNISTGEN_RESULTS": str(tmp_path / "results")}
    train = [sys.executable, "-m", "mnistgen", "train", "all", "--profile", "smoke", "--no-metrics", "--jobs", "1"]
    for g in [*judges, name]:
        train += ["--group", g]
    subprocess.run(train, cwd=REPO, env=env, check=True, capture_output=True, timeout=900)
    export = ("import json, sys; from pathlib import Path; from mnistgen import parts; "
              "print(json.dumps(parts.export_part('smoke', sys.argv[1], Path(sys.argv[2]), log=lambda _: None)))")
    for g in [*judges, name]:
        out = subprocess.run([sys.executable, "-c", export, g, str(editions)], cwd=REPO, env=env, check=True,
                             capture_output=True, text=True, timeout=900).stdout
    entry = json.loads(out)
    cmd = [sys.executable, "-m", "mnistgen", "edition", "verify", name, "--profile", "smoke", "--editions",
           str(editions), "--scratch", str(tmp_path)]
    r = subprocess.run(cmd + ["--record", str(tmp_path / "verify.json")], cwd=REPO, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{name}: equal" in r.stdout and "1 of 1 groups made again bitwise" in r.stdout
    assert "here:    " in r.stdout and "shipped: " in r.stdout
    assert "the shipped judges installed beside it: classifier arch=lenet, classifier arch=vgg" in r.stdout
    record = json.loads((tmp_path / "verify.json").read_text())
    assert record["groups"][0]["equal"] and record["groups"][0]["tensors"] > 0

    rid = entry["runs"][1]
    hist_name = f"runs/{rid}/history.json"
    original = {}

    def nudge_history(files):
        original[hist_name] = files[hist_name]
        hist = json.loads(files[hist_name])
        key = next(k for k, v in hist[1].items() if isinstance(v, float) and k != "seconds")
        hist[1][key] = math.nextafter(hist[1][key], math.inf)
        original["epoch"] = hist[1]["epoch"]
        files[hist_name] = json.dumps(hist).encode()

    _forge(editions, name, nudge_history)
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    # the whole report on failure: pytest's repr of a long string hides its middle, where the group's lines are
    assert f"{name}: DIFFERS" in r.stdout and f"histories part at epoch {original['epoch']}" in r.stdout, r.stdout[-3000:]

    def nudge_judge(files):  # the lenet judge's weights, each scaled by 1.01
        member = next(m for m in files if m.endswith("/" + runs.SHIPPED_WEIGHTS))
        scratch = tmp_path / "judge.pt"
        scratch.write_bytes(files[member])
        payload = runs.read_checkpoint(scratch)
        for model in payload["state"]["models"].values():
            for k, v in model.items():
                if torch.is_floating_point(v):
                    model[k] = v * 1.01
        runs.write_checkpoint(scratch, payload)
        files[member] = scratch.read_bytes()

    _forge(editions, name, lambda files: files.update({hist_name: original[hist_name]}))  # the group as shipped
    _forge(editions, "classifier arch=lenet", nudge_judge)
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{name}: DIFFERS" in r.stdout and "fid: differs by" in r.stdout
    assert "tensors:" not in r.stdout, "the group's own weights are made again bitwise"
    assert not list(tmp_path.glob("mnistgen-verify-*")), "the scratch folder is removed after"
