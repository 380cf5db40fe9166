"""`mnistgen edition verify`: retrain shipped groups here and say whether this code makes them again.

    python -m mnistgen edition verify --profile paper                    # the default set (below)
    python -m mnistgen edition verify --profile paper "vae z_dim=2"      # named groups

Import checks that a part arrived intact; only retraining checks that this code produced it. Each
group is retrained with the shipped configuration into a scratch results folder (``train all
--group``, as a user would, in a process of its own) and exported there as a part (``bundle export
--group``: the metrics a part carries are computed again from the new weights), and the two parts
are compared member by member: every shipped tensor bitwise, every history row field by field
(the wall time aside), every cached metric, the manifests' epochs and final values.

A group is retrained and measured with the shipped judges (the classifier groups' parts, installed
in its scratch folder first): its training-time FIDs and its parts' metrics are computed by the
judge the shipped numbers were computed by, so a difference is the group's own. The judges are
verified as groups of their own (the cheapest is in the default set).

Bitwise equality needs the same kernels: the vector instruction set, the thread count and the
library versions (``machine.py``). Each group's report names both machines; where they differ (or
the shipped one was not recorded), a difference in the last bits is what to expect, and the
metrics' differences are given in units of the seed spread, the scale on which the chapters
compare settings.

The default set: the cheapest group of every model family, by the training time its part records,
as long as they fit ``BUDGET_S`` together (families whose cheapest group does not fit are named,
with their time, to verify on request).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import machine
from .config import make_config
from .edition import profile_groups
from .parts import part_machine, parts_dir, read_part, read_parts
from .runs import REPO_DIR, SHIPPED_WEIGHTS, CheckpointError, read_checkpoint, results_dir
from .transfer import METRIC_CACHES, TransferError, _install_runs

# The default set's training time as the parts record it: half of the 10 minutes the set may take
# here, the other half for the metrics its parts carry (computed again at export: an IWAE row's
# test NLL costs more than its training) and for a machine slower than the one that trained it.
BUDGET_S = 300.0
TIME_FIELDS = ("seconds",)  # history fields that are wall times, not results


@dataclass
class GroupCheck:
    """What comparing one group's retrained part with the shipped one found."""
    group: str
    runs: int = 0
    tensors: int = 0
    tensors_differ: int = 0
    tensor_max_diff: float = 0.0
    history_rows: int = 0
    first_epoch_differs: int | None = None  # the first epoch whose history row differs
    history_max_diff: tuple[float, str] = (0.0, "")  # the largest difference, and its field
    metrics: int = 0
    metrics_differ: dict[str, float] = field(default_factory=dict)  # "file: key" -> |difference| / seed sd
    problems: list[str] = field(default_factory=list)  # run ids or members that do not correspond
    seconds: float = 0.0
    shipped_machine: dict[str, Any] = field(default_factory=dict)
    here: dict[str, Any] = field(default_factory=dict)
    judges: list[str] = field(default_factory=list)  # the shipped groups installed to measure it

    @property
    def equal(self) -> bool:
        return (not self.problems and self.tensors_differ == 0 and self.first_epoch_differs is None
                and not self.metrics_differ)

    def same_kernels(self) -> bool:
        keys = ("isa", "torch_isa", "torch_threads", "gpu", "torch", "mkl", "onednn")
        return all(self.shipped_machine.get(k) == self.here.get(k) != machine.UNKNOWN for k in keys)

    def lines(self) -> list[str]:
        head = (f"{self.group}: {'equal' if self.equal else 'DIFFERS'} ({self.runs} runs retrained in "
                f"{self.seconds:.0f} s: {self.tensors} shipped tensors, {self.history_rows} history rows, "
                f"{self.metrics} cached metrics compared)")
        out = [head]
        if self.judges:
            out.append(f"  the shipped judges installed beside it: {', '.join(self.judges)}")
        out += [f"  {p}" for p in self.problems]
        if self.tensors_differ:
            out.append(f"  tensors: {self.tensors_differ} of {self.tensors} differ, largest difference "
                       f"{self.tensor_max_diff:.3g}")
        if self.first_epoch_differs is not None:
            out.append(f"  histories part at epoch {self.first_epoch_differs}; largest difference "
                       f"{self.history_max_diff[0]:.3g} (in {self.history_max_diff[1]})")
        for name, sds in sorted(self.metrics_differ.items()):
            out.append(f"  {name}: differs by {_units(sds)}")
        out.append(f"  shipped: {machine.describe(self.shipped_machine)}")
        out.append(f"  here:    {machine.describe(self.here)}")
        if not self.equal and not self.same_kernels():
            out.append("  the machines' vector instruction sets, threads or libraries differ (or were not recorded): "
                       "the last bits can differ, so compare the metrics' differences with the seeds' spread above")
        return out

    def record(self) -> dict[str, Any]:
        return {"group": self.group, "equal": self.equal, "runs": self.runs, "seconds": round(self.seconds, 1),
                "tensors": self.tensors, "tensors_differ": self.tensors_differ,
                "tensor_max_diff": self.tensor_max_diff, "history_rows": self.history_rows,
                "first_epoch_differs": self.first_epoch_differs, "metrics": self.metrics,
                "metrics_differ_in_seed_sd": self.metrics_differ, "problems": self.problems, "judges": self.judges,
                "shipped_machine": self.shipped_machine, "here": self.here}


def _units(sds: float) -> str:
    return "an amount, where the seeds agree exactly" if math.isinf(sds) else f"{sds:.3g} seed sd"


def default_groups(profile: str, root: Path, budget_s: float = BUDGET_S) -> tuple[list[str], list[str]]:
    """(the groups verified by default, one line per family left out): per model family its shipped
    group with the least recorded training time, cheapest families first, while they fit ``budget_s``."""
    record = read_parts(profile, root)
    cheapest: dict[str, tuple[float, str]] = {}
    for name, entry in record["parts"].items():
        family = name.split()[0]
        cost = float(entry["training_wall_seconds"])
        if family not in cheapest or cost < cheapest[family][0]:
            cheapest[family] = (cost, name)
    chosen, left, total = [], [], 0.0
    for family, (cost, name) in sorted(cheapest.items(), key=lambda kv: kv[1]):
        if total + cost <= budget_s:
            chosen.append(name)
            total += cost
        else:
            left.append(f"{family}: its cheapest group {name!r} trained in {cost / 60:.1f} min (name it to verify it)")
    return chosen, left


def _numbers(a: Any, b: Any, path: str = "") -> list[tuple[str, float]]:
    """Every place two JSON values differ: (where, |difference|; inf where not both numbers)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k in TIME_FIELDS:
                continue
            if k not in a or k not in b:
                out.append((f"{path}{k}", math.inf))
            else:
                out += _numbers(a[k], b[k], f"{path}{k}.")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [(path.rstrip("."), math.inf)]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _numbers(x, y, f"{path}{i}.")]
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return [] if a == b else [(path.rstrip("."), math.inf)]
    return [] if a == b else [(path.rstrip("."), abs(float(a) - float(b)))]


def compare_parts(group: str, shipped: Path, ours: Path, runs: list[str]) -> GroupCheck:
    """Compare the unpacked parts ``shipped`` and ``ours`` (folders holding ``runs/<id>/``)."""
    check = GroupCheck(group, runs=len(runs))
    caches: dict[str, list[tuple[dict, dict]]] = {}  # cache file name -> (theirs, ours) per run
    for rid in runs:
        a, b = shipped / "runs" / rid, ours / "runs" / rid
        if not b.is_dir():
            check.problems.append(f"run {rid} was not made again here (another run id: other code or settings)")
            continue
        names_a = {p.name for p in a.iterdir()}
        names_b = {p.name for p in b.iterdir()}
        for name in sorted(names_a ^ names_b):
            check.problems.append(f"run {rid}: {name} is in only one of the two parts")
        ha, hb = (json.loads((d / "history.json").read_text()) for d in (a, b))
        if len(ha) != len(hb):
            check.problems.append(f"run {rid}: {len(ha)} history rows shipped, {len(hb)} here")
        for row_a, row_b in zip(ha, hb):
            check.history_rows += 1
            diffs = _numbers(row_a, row_b)
            if diffs:
                epoch = int(row_a.get("epoch", 0))
                if check.first_epoch_differs is None or epoch < check.first_epoch_differs:
                    check.first_epoch_differs = epoch
                worst = max(diffs, key=lambda d: d[1])
                if worst[1] > check.history_max_diff[0]:
                    check.history_max_diff = (worst[1], worst[0])
        ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
        for where, _ in _numbers({"epochs": ma.get("epochs"), "final": ma.get("final")},
                                 {"epochs": mb.get("epochs"), "final": mb.get("final")}):
            check.problems.append(f"run {rid}: the manifest's {where} differs")
        if SHIPPED_WEIGHTS in names_a and SHIPPED_WEIGHTS in names_b:
            (ta, la), (tb, lb) = (_leaves(read_checkpoint(d / SHIPPED_WEIGHTS)["state"]) for d in (a, b))
            for key in sorted(set(ta) | set(tb)):
                check.tensors += 1
                if key not in ta or key not in tb or ta[key].shape != tb[key].shape or ta[key].dtype != tb[key].dtype:
                    check.tensors_differ += 1
                    check.problems.append(f"run {rid}: tensor {key} is not in both, or not of one shape and dtype")
                elif not _same_bits(ta[key], tb[key]):
                    check.tensors_differ += 1
                    diff = (ta[key].double() - tb[key].double()).abs().nan_to_num(nan=math.inf).max().item()
                    check.tensor_max_diff = max(check.tensor_max_diff, diff)
            for where, _ in _numbers(la, lb):  # the payload's other values (epochs, snapshot steps)
                check.problems.append(f"run {rid}: the shipped weights' {where} differs")
        for name in sorted(names_a & names_b):
            if name.startswith(METRIC_CACHES) and name.endswith(".json"):
                # a cache's name holds its run's id where the number is the run's own (nll-): the
                # seeds' caches of one kind are then told by their prefix
                kind = name if all((shipped / "runs" / r / name).is_file() for r in runs) else name.split("-")[0]
                caches.setdefault(kind, []).append((json.loads((a / name).read_text()),
                                                    json.loads((b / name).read_text())))
    for name, pairs in caches.items():
        for theirs, mine in pairs:
            check.metrics += 1
            for where, diff in _numbers(theirs, mine):
                spread = _seed_sd([t for t, _ in pairs], where)
                units = diff / spread if spread > 0 else math.inf
                key = f"{name.split('-')[0]} {where}"
                check.metrics_differ[key] = max(check.metrics_differ.get(key, 0.0), units)
    return check


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit (torch.equal calls -0.0 and 0.0 equal and a NaN unequal to itself)."""
    a, b = a.detach().cpu().contiguous(), b.detach().cpu().contiguous()
    if a.numel() == 0:
        return True
    return torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))


def _seed_sd(values: list[dict], where: str) -> float:
    """The standard deviation over the group's runs of the number at ``where`` (0 where it is not one)."""
    xs = []
    for v in values:
        for part in where.split("."):
            v = v.get(part) if isinstance(v, dict) else (v[int(part)] if isinstance(v, list) and part.isdigit()
                                                          and int(part) < len(v) else None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs.append(float(v))
    if len(xs) < 2:
        return 0.0
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def _leaves(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every tensor of a shipped weights payload by a dotted path, and its other values likewise."""
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, Any] = {}
    if isinstance(state, torch.Tensor):
        tensors[prefix.rstrip(".")] = state
    elif isinstance(state, dict):
        for k, v in state.items():
            t, o = _leaves(v, f"{prefix}{k}.")
            tensors.update(t)
            other.update(o)
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            t, o = _leaves(v, f"{prefix}{i}.")
            tensors.update(t)
            other.update(o)
    else:
        other[prefix.rstrip(".")] = state
    return tensors, other


def _run(cmd: list[str], env: dict[str, str], what: str, log: Callable[[str], None]) -> None:
    log(f"verify: {what}")
    r = subprocess.run(cmd, env=env, cwd=REPO_DIR, capture_output=True, text=True)
    if r.returncode != 0:
        raise TransferError(f"{what} failed (exit {r.returncode}): {(r.stderr or r.stdout)[-2000:]}")


def verify(profile: str, groups: list[str] | None = None, root: Path | None = None, scratch: Path | None = None,
           log: Callable[[str], None] = print) -> tuple[list[GroupCheck], list[str]]:
    """Retrain ``groups`` (default: ``default_groups``) of ``profile``'s shipped parts (in ``root``,
    default editions/) into ``scratch`` (default a temporary folder) and compare; returns the checks
    and the lines on families left out of the default set."""
    from .bundle import EDITIONS_DIR

    root = Path(root or EDITIONS_DIR)
    record = read_parts(profile, root)
    left: list[str] = []
    if not groups:
        groups, left = default_groups(profile, root)
        if not groups:
            raise TransferError(f"no shipped group of profile {profile!r} fits the default set's {BUDGET_S / 60:.0f} min"
                                + (": " + "; ".join(left) if left else f" (no parts in {parts_dir(profile, root)})")
                                + "; name the groups to verify")
    unknown = [g for g in groups if g not in record["parts"]]
    if unknown:
        raise TransferError(f"no shipped part of profile {profile!r} for {', '.join(map(repr, unknown))}; shipped: "
                            + ("; ".join(record["parts"]) or "none"))
    if scratch is not None and not Path(scratch).is_dir():
        raise TransferError(f"--scratch {scratch} is not a folder")
    models = {n: g["model"] for n, g in profile_groups(profile, make_config("evaluation", profile)).items()}
    judges = [n for n in record["parts"] if models.get(n) == "classifier"]
    with tempfile.TemporaryDirectory(prefix="mnistgen-verify-", dir=scratch) as tmp:
        out_root = Path(tmp) / "editions"
        shipped: dict[str, tuple[Any, Path]] = {}
        for name in groups:  # every shipped part read and checked before hours go into training
            entry = record["parts"][name]
            folder = Path(tmp) / "shipped" / entry["file"]
            shipped[name] = (read_part(parts_dir(profile, root) / entry["file"], entry["sha256"], folder, profile),
                             folder)
        checks = []
        for i, name in enumerate(groups):
            # a results folder of its own per group, holding the shipped judges where the group is measured by them
            results = Path(tmp) / f"results-{i}"
            used = [] if models.get(name) == "classifier" else judges
            for j in used:
                staged = Path(tmp) / f"judges-{i}" / record["parts"][j]["file"]
                read_part(parts_dir(profile, root) / record["parts"][j]["file"], record["parts"][j]["sha256"], staged,
                          profile)
                _install_runs(staged / "runs", results_dir(profile, results) / "runs", staged, log=lambda _: None)
            env = {**os.environ, "MNISTGEN_RESULTS": str(results)}
            t0 = time.perf_counter()
            _run([sys.executable, "-m", "mnistgen", "train", "all", "--profile", profile, "--group", name,
                  "--no-metrics", "--jobs", "1"], env, f"retraining {name!r} into {tmp}", log)
            seconds = time.perf_counter() - t0
            _run([sys.executable, "-c", "import sys; from pathlib import Path; from mnistgen import parts; "
                  "parts.export_part(sys.argv[1], sys.argv[2], Path(sys.argv[3]), log=lambda _: None)",
                  profile, name, str(out_root)], env, f"exporting {name!r} as a part there", log)
            theirs, folder = shipped[name]
            mine_entry = read_parts(profile, out_root)["parts"][name]
            here = Path(tmp) / "here" / mine_entry["file"]
            mine = read_part(parts_dir(profile, out_root) / mine_entry["file"], mine_entry["sha256"], here, profile)
            try:
                check = compare_parts(name, folder, here, theirs.runs)
            except CheckpointError as e:
                raise TransferError(f"group {name!r}: {e}") from None
            check.seconds = seconds
            check.judges = used
            check.shipped_machine = part_machine(theirs, folder)
            check.here = part_machine(mine, here)  # as the retraining process recorded it
            checks.append(check)
            for line in check.lines():
                log(line)
    return checks, left
