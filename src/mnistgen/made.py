"""How an edition was made: per group of runs the machine, the training time, the date and the
commit, from the runs' own manifests (trained here, or installed from a bundle or its parts), and
every measured `edition verify` (``benchmarks/measured/verify-*.json``). The book's page "How
this edition was made" (notebooks/06_edition.py) shows them; nothing here is typed by hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import edition, machine
from .report import md_code, md_text, table_block
from .runs import RESULTS_ROOT, installed_bundle, run_path


@dataclass(frozen=True)
class GroupMade:
    name: str
    runs: int
    finished: int  # runs with a manifest here
    machine: dict[str, Any]
    wall_seconds: float  # the group trains as one batch: its runs share one wall time, the longest
    last_finished: str
    commits: tuple[str, ...]
    code_versions: tuple[str, ...]


def groups_made(profile: str, results_root: Path = RESULTS_ROOT) -> list[GroupMade]:
    """Every group of ``profile``'s edition, as its runs' manifests in ``results_root`` record it."""
    bundle = installed_bundle(profile, results_root)
    out = []
    for name, ids in edition.run_ids(profile).items():
        manifests = []
        for rid in ids:
            p = run_path(profile, rid, results_root, bundle) / "manifest.json"
            if p.is_file():
                manifests.append(json.loads(p.read_text()))
        out.append(GroupMade(
            name, len(ids), len(manifests),
            machine.merge([machine.from_manifest(m) for m in manifests]) if manifests else {},
            max((float(m["wall_seconds"]) for m in manifests), default=0.0),
            max((str(m["finished"]) for m in manifests), default=""),
            tuple(sorted({str(m["git_commit"]) for m in manifests})),
            tuple(sorted({str(m["code_version"]) for m in manifests}))))
    return out


def short_machine(record: dict[str, Any]) -> str:
    """"AMD EPYC, avx2, 2 torch threads"; "CPU not recorded, 2 torch threads" (a GPU's name first)."""
    if not record:
        return "—"
    def known(k: str) -> bool:
        return str(record.get(k, machine.UNKNOWN)) not in (machine.UNKNOWN, "")

    parts = [str(record["gpu"])] if known("gpu") and record["gpu"] != "none" else []
    # the vendor's marks and "Processor"/"CPU" say nothing a reader needs in a narrow column
    cpu = re.sub(r"\((R|TM|r|tm)\)|\s(Processor|CPU)\b", "", str(record.get("cpu", ""))).strip()
    parts += [" ".join(cpu.split())] if known("cpu") else ["CPU not recorded"]
    parts += [str(record["isa"])] if known("isa") else []
    parts += [machine.threads(record["torch_threads"])] if known("torch_threads") else []
    return ", ".join(parts)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def groups_table(groups: list[GroupMade]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the table of groups (``report.table_block`` numbers and captions it)."""
    rows = []
    for g in groups:
        if not g.finished:
            rows.append([md_text(g.name), str(g.runs), "not in this edition yet", "", "", ""])
            continue
        rows.append([md_text(g.name), str(g.runs), md_text(short_machine(g.machine)), hours(g.wall_seconds),
                     md_text(g.last_finished[:10]), ", ".join(md_code(c) for c in g.commits)])
    return ["group", "runs", "machine", "training time", "finished", "trained at commit"], rows


def machines(groups: list[GroupMade]) -> list[tuple[str, list[str]]]:
    """Each distinct machine record, described in full, with the groups trained on it."""
    seen: dict[str, list[str]] = {}
    for g in groups:
        if g.finished:
            seen.setdefault(machine.describe(g.machine), []).append(g.name)
    return list(seen.items())


def verify_summary(records: list[dict[str, Any]]) -> str:
    """The measured `edition verify` runs (oldest first) as Markdown: per group equal or where it
    parts, and the machine it was retrained on, one row per group and run."""
    if not records:
        return "No `edition verify` has been measured for this profile yet."
    rows = []
    for record in records:
        for g in record["groups"]:
            verdict = "equal, bit for bit" if g["equal"] else (
                f"differs (histories from epoch {g['first_epoch_differs']})" if g["first_epoch_differs"] is not None
                else "differs")
            rows.append([md_text(record.get("time", record["date"])), md_text(g["group"]), str(g["runs"]), verdict,
                         f"{g['tensors']} tensors, {g['history_rows']} history rows, {g['metrics']} cached metrics",
                         f"{g['seconds']:.0f} s", md_text(short_machine(g["here"])),
                         md_text(short_machine(g["shipped_machine"]))])
    table = table_block("tab-made-verify", "`mnistgen edition verify` as measured: each group retrained on the "
                        "machine named and compared with its shipped part.",
                        ["measured", "group", "runs", "retrained here", "compared", "training time", "verified on",
                         "shipped from"], rows)
    last = records[-1]
    left = "".join(f"\n- {md_text(line)}" for line in last.get("left_out", []))
    # the finding first: per machine verified on, how many of its retrained groups were equal
    seen: dict[str, list[bool]] = {}
    for record in records:
        for g in record["groups"]:
            seen.setdefault(short_machine(g["here"]), []).append(bool(g["equal"]))
    lead = " ".join(f"On {md_text(on)}: {sum(eq)} of {len(eq)} group{'s' if len(eq) > 1 else ''} retrained "
                    "equal, bit for bit." for on, eq in seen.items())
    codes = {str(r["code_version"]) for r in records}
    runs = "; ".join(f"{md_text(r.get('time', r['date']))}, {r['wall_seconds'] / 60:.1f} min in all"
                     + ("" if len(codes) == 1 else f", training code {md_code(r['code_version'])}") for r in records)
    by = f", each by training code {md_code(codes.pop())}" if len(codes) == 1 else ""
    return (f"{lead}\n\nMeasured {len(records)} time{'s' if len(records) > 1 else ''}{by} ({runs}):\n\n{table}"
            + (f"\n\nLeft out of the default set, to verify on request:{left}" if left else ""))
