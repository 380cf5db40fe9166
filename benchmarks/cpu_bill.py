"""The paper edition's CPU bill, group by group, for this code and for a baseline commit's.

    python -m benchmarks.cpu_bill                       # make bench runs it after the throughput table
    python -m benchmarks.cpu_bill --baseline 187e198 --steps 40 --repeats 3 --iwae

Every group of runs ``mnistgen train all --profile paper`` trains (``edition.profile_groups``) is
timed as it trains: all its members as one batch, the profile's batch size, on this CPU with
torch's default threads. Per group, in a fresh process: a warm-up epoch of ``--steps`` steps, then
``--repeats`` timed ones (the median is kept), the step's FLOPs (``torch.utils.flop_counter``) and
the matrix products it made replayed back to back (the step's matmul ceiling: what it would reach
if everything else cost nothing), and one call of its per-epoch evaluation (test ELBO, FID of the
samples during training, the snapshot). The projection is

    epochs x steps per epoch x ms per step  +  evaluations x seconds per evaluation,

summed over the groups; the IWAE rows only with ``--iwae``. The evaluation chapter's metrics
(FID / IS / Parzen / NLL of the finished models) are the same code before and after and are not
part of it.

The baseline is the same measurement on another commit's code: its ``src/`` is extracted with
``git archive`` into a temporary folder and put first on the path of the timing process, so
"before" is the code that was there, not a reconstruction of it. The two sides alternate group by
group, so a drift of this machine's speed hits both alike. Without git history (a tarball) the
baseline is skipped with a message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
BASELINE = "187e198"  # the code before the CPU-speed work (issue 32): one batch per sweep setting


def time_group(name: str, steps: int, repeats: int, profile: str = "paper",
               seeds: list[int] | None = None) -> dict[str, Any]:
    """Time group ``name`` of ``profile`` with whatever ``mnistgen`` is first on the path;
    ``seeds``: other seeds than the profile's (the IWAE schedule is chosen by seeds x epochs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import mnistgen
    from benchmarks.throughput import _RecordMatmuls, matmul_ceiling_gflops
    from mnistgen import edition, evaluators, train
    from mnistgen.config import make_config
    from mnistgen.data import load_mnist
    from mnistgen.models import LeNet
    from mnistgen.runs import DATA_ROOT

    dev = torch.device("cpu")
    try:  # train() flushes subnormals in every thread (numerics.py); the epochs timed here skip train()
        from mnistgen.numerics import flush_subnormals
        flush_subnormals()
    except ImportError:  # code before it (the baseline): IEEE subnormals, as it trained
        pass
    ev = make_config("evaluation", profile)
    group = edition.profile_groups(profile, ev)[name]
    if hasattr(edition, "group_members"):
        members = edition.group_members(profile, group, ev)
    else:  # code before members: one configuration and its seeds
        cfg, profile_seeds = edition.group_config(profile, group, ev)
        members = [dataclasses.replace(cfg, seed=s) for s in profile_seeds]
    if seeds is not None:
        members = [dataclasses.replace(members[0], seed=s) for s in seeds]
    full = members[0]
    cfgs = [dataclasses.replace(c, n_train=steps * full.batch_size, device="cpu") for c in members]
    init = getattr(train, "init_members", None)
    st = init(cfgs, dev) if init else train.init_state(cfgs[0], dev, [c.seed for c in cfgs])
    data, test = load_mnist(DATA_ROOT, True), load_mnist(DATA_ROOT, False)
    x, y = train.prepare(cfgs[0], data, dev)
    log_steps = bool(group.get("log_steps", False))
    epoch = train.EPOCHS[full.model]
    epoch(st, cfgs[0], x, y, log_steps)  # warm-up: allocations, kernels chosen
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        epoch(st, cfgs[0], x, y, log_steps)
        times.append(time.perf_counter() - t0)
    ms = 1000 * statistics.median(times) / steps
    one = dataclasses.replace(cfgs[0], n_train=full.batch_size)
    x1, y1 = train.prepare(one, data, dev)
    with FlopCounterMode(display=False) as fc, _RecordMatmuls() as rec:
        epoch(st, one, x1, y1, log_steps)
    gflop = fc.get_total_flops() / 1e9
    ceiling = matmul_ceiling_gflops(rec.calls, dev)
    # the per-epoch work beside the steps: the family's evaluation, due every quality_every epochs
    # (GANs: FID of the samples during training; VAEs and classifiers: every epoch), and the GANs'
    # fixed-noise snapshot (every epoch)
    evaluator = evaluators.for_run(full, data, test, dev, LeNet())  # an untrained judge costs the same
    st.epoch = full.epochs
    eval_s, n_evals = 0.0, 0
    if evaluator is not None:
        t0 = time.perf_counter()
        evaluator(st)
        eval_s = time.perf_counter() - t0
        every = getattr(full, "quality_every", 1) or 1
        n_evals = len({e for e in range(1, full.epochs + 1) if e % every == 0} | {full.epochs})
    snap_s = 0.0
    if full.model in ("gan", "acgan"):
        t0 = time.perf_counter()
        train.snapshot(st, full)
        snap_s = time.perf_counter() - t0
    steps_per_epoch = -(-(60_000 - full.validation if full.n_train is None else full.n_train) // full.batch_size)
    total = full.epochs * (steps_per_epoch * ms / 1000 + snap_s) + n_evals * eval_s
    return {"group": name, "profile": profile, "members": len(members), "batch_size": full.batch_size, "epochs": full.epochs,
            "steps_per_epoch": steps_per_epoch, "ms_per_step": round(ms, 3),
            "ms_per_step_runs": [round(1000 * t / steps, 3) for t in times], "gflop_per_step": round(gflop, 4),
            "achieved_gflops": round(gflop / ms * 1000, 1), "matmul_ceiling_gflops": round(ceiling, 1),
            "evaluations": n_evals, "eval_s": round(eval_s, 3), "snapshot_s": round(snap_s, 4),
            "total_s": round(total, 1), "torch_threads": torch.get_num_threads(),
            "mnistgen": str(Path(mnistgen.__file__).parent)}


@contextmanager
def baseline_tree(commit: str) -> Iterator[Path | None]:
    """``commit``'s src/ and profiles/ in a temporary folder, or None (with a message) where git cannot give it."""
    with tempfile.TemporaryDirectory(prefix="mnistgen-baseline-") as tmp:
        archive = Path(tmp) / "src.tar"
        r = subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), commit, "src", "profiles"],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"baseline {commit}: not measured ({r.stderr.strip() or 'git archive failed'})", flush=True)
            yield None
            return
        with tarfile.open(archive) as t:
            t.extractall(tmp, filter="data")
        yield Path(tmp)


def _measure(name: str, src_root: Path, steps: int, repeats: int) -> dict[str, Any]:
    """``time_group`` in a fresh process with ``src_root/src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src_root / "src"), str(REPO)]),
           "MNISTGEN_DATA": str(_data_root())}
    code = ("import json, sys; from benchmarks.cpu_bill import time_group; "
            f"print(json.dumps(time_group({name!r}, {steps}, {repeats})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(REPO))
    if r.returncode:
        raise RuntimeError(f"timing group {name!r} with the code in {src_root} failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if Path(out["mnistgen"]).resolve() != (src_root / "src" / "mnistgen").resolve():
        raise RuntimeError(f"the timing process imported {out['mnistgen']}, not the code in {src_root}")
    return out


def _data_root() -> Path:
    from mnistgen.runs import DATA_ROOT
    return DATA_ROOT


def _groups(iwae: bool) -> list[str]:
    from mnistgen import edition
    from mnistgen.config import make_config

    names = list(edition.profile_groups("paper", make_config("evaluation", "paper")))
    return [n for n in names if iwae or not n.startswith("iwae")]


def _baseline_groups(tree: Path, iwae: bool) -> list[str]:
    code = ("import json; from mnistgen import edition; from mnistgen.config import make_config; "
            "print(json.dumps(list(edition.profile_groups('paper', make_config('evaluation', 'paper')))))")
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "MNISTGEN_DATA": str(_data_root())}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return [n for n in json.loads(r.stdout.strip().splitlines()[-1]) if iwae or not n.startswith("iwae")]


def bill(baseline: str | None = "", steps: int = 40, repeats: int = 3, iwae: bool = False,
         peak_gflops: float | None = None) -> dict[str, Any]:
    """Both sides' group tables and totals (seconds and hours); see the module docstring.
    ``baseline``: a commit, "" for ``BASELINE``, None for no baseline."""
    baseline = BASELINE if baseline == "" else baseline
    ours = _groups(iwae)
    out: dict[str, Any] = {"steps": steps, "repeats": repeats, "iwae": iwae, "after": {}, "before": {},
                           "baseline": baseline}
    with baseline_tree(baseline) if baseline else _none() as tree:
        theirs = _baseline_groups(tree, iwae) if tree else []
        for i in range(max(len(ours), len(theirs))):  # alternate: one group of each side in turn
            for side, names, root in (("before", theirs, tree), ("after", ours, REPO)):
                if i < len(names):
                    r = _measure(names[i], root, steps, repeats)
                    out[side][names[i]] = r
                    _print_row(side, r, peak_gflops)
    for side in ("before", "after"):
        if out[side]:
            total = sum(r["total_s"] for r in out[side].values())
            out[f"{side}_total_s"] = round(total, 1)
            out[f"{side}_total_h"] = round(total / 3600, 2)
    if out["before"]:
        print(f"paper profile{'' if iwae else ' without the IWAE rows'}, projected on this CPU: "
              f"{out['before_total_h']:.2f} h with {baseline}'s code, {out['after_total_h']:.2f} h now "
              f"({out['before_total_s'] / out['after_total_s']:.2f}x)", flush=True)
    else:
        print(f"paper profile{'' if iwae else ' without the IWAE rows'}, projected on this CPU: "
              f"{out['after_total_h']:.2f} h", flush=True)
    return out


@contextmanager
def _none() -> Iterator[None]:
    yield None


def _print_row(side: str, r: dict[str, Any], peak: float | None) -> None:
    share = f" {r['achieved_gflops'] / peak:4.0%} of peak (ceiling {r['matmul_ceiling_gflops'] / peak:4.0%})" if peak else ""
    print(f"{side:6} {r['group']:38} {r['members']:2d} x {r['batch_size']:3d}: {r['ms_per_step']:7.2f} ms/step "
          f"{r['achieved_gflops']:5.0f} GFLOP/s{share}; {r['epochs']:3d} epochs -> {r['total_s'] / 3600:5.2f} h",
          flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default=BASELINE, help="commit whose code is 'before' ('' to skip)")
    p.add_argument("--steps", type=int, default=40, help="training steps per timed epoch")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per group (median kept)")
    p.add_argument("--iwae", action="store_true", help="also the IWAE rows (800 epochs each: hours)")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    result = bill(args.baseline or None, args.steps, args.repeats, args.iwae)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
