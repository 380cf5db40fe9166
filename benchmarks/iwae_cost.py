"""What the IWAE rows cost on this CPU, and the schedule the paper profile can afford.

    python -m benchmarks.iwae_cost --out benchmarks/measured/iwae-cost-$(date +%F).json

Each of the five (objective, k) rows of the VAE chapter's Table 1 comparison is timed as it
trains (``cpu_bill.time_group``: its seeds as one batch, warm-up then timed epochs of ``--steps``
steps, median kept, one call of its per-epoch evaluation), each in a fresh process, at two
settings:

- ``paper``: the paper profile's batch (100), with 3 and with 5 seeds, to choose its schedule:
  the most epochs such that all five rows together fit ``--budget-h`` hours of this machine (the
  campaign's group size is 2 h; the rows are five groups, each well under it);
- ``burda``: Burda et al.'s batch (20) and the burda profile's 3 seeds, to project their full
  protocol (3,280 epochs) on this CPU, and on a Dask cluster of such machines, where the five
  rows are five independent tasks (the wall time is the slowest row's).

The GPU side is read from the H100 measurement (``gpu-steps-h100-*.json``: an epoch of each row
at batch 100, 5 seeds, CUDA graphs). At batch 20 an epoch has five times the steps, each with a
fifth of the work; the steps there are bound by kernel launches, not arithmetic, so the
projection takes batch 100's time per step for batch 20's steps (an upper bound for the
launch-bound rows; the k = 50 rows' steps are partly arithmetic, whose fifth is not claimed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BURDA_EPOCHS = 3280


def _measure(name: str, profile: str, seeds: list[int], steps: int, repeats: int) -> dict[str, Any]:
    code = ("import json; from benchmarks.cpu_bill import time_group; "
            f"print(json.dumps(time_group({name!r}, {steps}, {repeats}, {profile!r}, {seeds!r})))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(REPO))
    if r.returncode:
        raise RuntimeError(f"timing {name!r} ({profile}, seeds {seeds}) failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def epoch_seconds(r: dict[str, Any]) -> float:
    """One epoch of a timed row: its steps plus its per-epoch evaluation."""
    return r["steps_per_epoch"] * r["ms_per_step"] / 1000 + r["eval_s"]


def affordable_epochs(rows: list[dict[str, Any]], budget_s: float) -> int:
    """The most epochs, the same for every row, whose sum over ``rows`` fits ``budget_s``."""
    return int(budget_s // sum(epoch_seconds(r) for r in rows))


def gpu_rows(measured: Path) -> dict[str, float] | None:
    """Seconds per step at batch 100 (5 seeds, graphed) per IWAE row, from the newest GPU file."""
    files = sorted(measured.glob("gpu-steps-*.json"))
    if not files:
        return None
    groups = json.loads(files[-1].read_text())["paper_projection"]["groups"]
    return {name: g["epoch_s"] / 600 for name, g in groups.items() if name.startswith("iwae")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    p.add_argument("--repeats", type=int, default=2, help="timed epochs per row (median kept)")
    p.add_argument("--budget-h", type=float, default=4.0, help="hours of this machine for all five rows")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)

    import torch

    from mnistgen import edition
    from mnistgen.config import make_config

    names = [n for n in edition.profile_groups("paper", make_config("evaluation", "paper")) if n.startswith("iwae")]
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cpu": {"torch_threads": torch.get_num_threads(), "processor": _processor()},
                           "steps": args.steps, "repeats": args.repeats, "budget_h": args.budget_h, "rows": {}}
    for name in names:
        row = {"paper_3_seeds": _measure(name, "paper", [0, 1, 2], args.steps, args.repeats),
               "paper_5_seeds": _measure(name, "paper", [0, 1, 2, 3, 4], args.steps, args.repeats),
               "burda_3_seeds": _measure(name, "burda", [0, 1, 2], args.steps, args.repeats)}
        out["rows"][name] = row
        print(f"{name:26} " + "; ".join(f"{k}: {v['ms_per_step']:7.2f} ms/step x {v['steps_per_epoch']} "
                                        f"+ eval {v['eval_s']:.2f} s = {epoch_seconds(v):6.1f} s/epoch"
                                        for k, v in row.items()), flush=True)
    budget = args.budget_h * 3600
    for seeds in (3, 5):
        rows = [r[f"paper_{seeds}_seeds"] for r in out["rows"].values()]
        out[f"paper_epochs_{seeds}_seeds"] = affordable_epochs(rows, budget)
    burda = {n: r["burda_3_seeds"] for n, r in out["rows"].items()}
    per_row = {n: BURDA_EPOCHS * epoch_seconds(r) for n, r in burda.items()}
    out["burda_cpu_h"] = {"rows": {n: round(s / 3600, 1) for n, s in per_row.items()},
                          "one_machine": round(sum(per_row.values()) / 3600, 1),
                          "dask_five_machines": round(max(per_row.values()) / 3600, 1)}
    gpu = gpu_rows(REPO / "benchmarks" / "measured")
    if gpu:
        steps_burda = BURDA_EPOCHS * 60_000 // 20
        rows = {n: steps_burda * s for n, s in gpu.items()}
        out["burda_gpu_h"] = {"rows": {n: round(s / 3600, 1) for n, s in rows.items()},
                              "one_gpu_upper_bound": round(sum(rows.values()) / 3600, 1),
                              "how": "batch 100's graphed seconds per step (5 seeds, H100) x 3,280 epochs "
                                     "x 3,000 steps of batch 20, per row; evaluation not included"}
    print(f"paper profile: {out['paper_epochs_3_seeds']} epochs with 3 seeds or {out['paper_epochs_5_seeds']} "
          f"with 5 fit {args.budget_h} h for all five rows; Burda et al.'s protocol (3 seeds): "
          f"{out['burda_cpu_h']['one_machine']} h on this machine, {out['burda_cpu_h']['dask_five_machines']} h on "
          f"five such machines" + (f", <= {out['burda_gpu_h']['one_gpu_upper_bound']} h on one H100" if gpu else ""),
          flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
