"""The provenance block every chapter opens with: a real Markdown table, compact on a narrow page."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from mnistgen import report


def _run(name: str, seed: int, device: str = "cpu", commit: str = "abc123def456") -> SimpleNamespace:
    manifest = {"seed": seed, "epochs": 15, "wall_seconds": 12.3, "device": device,
                "device_name": "x86_64 CPU, 1 torch threads", "git_commit": commit}
    return SimpleNamespace(path=Path(f"/r/{name}"), manifest=manifest)


def _table(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def test_provenance_is_a_markdown_table_with_one_row_per_run():
    md = report.provenance("gan", "quick", {"epochs": None}, [_run("gan-seed0-x", 0), _run("gan-seed1-y", 1)])
    rows = _table(md)
    assert rows[0] == "| run | seed | epochs | training wall time (its batch of seeds) |"
    assert rows[1] == "|---|---|---|---|"          # a separator row MyST turns into a <table>
    assert len(rows) == 4 and "`gan-seed1-y` | 1 | 15 | 12 s" in rows[3]
    # shared device and commit are said once, not repeated in every row
    assert "trained on cpu (x86_64 CPU, 1 torch threads) from code commit `abc123def456`" in md
    assert "make run NOTEBOOK=gan PROFILE=quick" in md


def test_provenance_adds_columns_where_runs_differ():
    md = report.provenance("evaluation", "paper", {}, [_run("a", 0, device="cuda"), _run("b", 1, commit="0123456789ab")])
    header = _table(md)[0]
    assert header.endswith("| device | code commit |")
    assert "trained on" not in md
