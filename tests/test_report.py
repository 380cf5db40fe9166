"""The provenance block every chapter opens with: a real Markdown table, compact on a narrow page."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mnistgen import report


def _run(name: str, seed: int, device: str = "cpu", commit: str = "abc123def456", **config) -> SimpleNamespace:
    config = {"seed": seed, "epochs": 15, "beta1": 0.5, "batch_size": 64, "device": device, **config}
    manifest = {"seed": seed, "epochs": 15, "wall_seconds": 12.3, "device": device, "model": name.split("-")[0],
                "device_name": "x86_64 CPU, 1 torch threads", "git_commit": commit, "config": config}
    return SimpleNamespace(path=Path(f"/r/{name}"), manifest=manifest)


def _table(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def test_provenance_is_one_row_per_configuration_named_by_what_tells_it_apart():
    runs = [_run("gan-seed0-x", 0), _run("gan-seed1-y", 1), _run("gan-seed0-z", 0, beta1=0.9),
            _run("gan-seed1-w", 1, beta1=0.9), _run("classifier-seed0-c", 0, beta1=None)]
    md = report.provenance("gan", "quick", {"epochs": None}, runs)
    rows = _table(md)
    assert rows[0] == "| configuration | seeds | epochs | training wall time (its batch) |"
    assert rows[1] == "|---|---|---|---|"          # a separator row MyST turns into a <table>
    assert rows[2:] == ["| gan, beta1 = 0.5 | 0, 1 | 15 | 12 s |", "| gan, beta1 = 0.9 | 0, 1 | 15 | 12 s |",
                        "| classifier | 0 | 15 | 12 s |"]
    assert "5 runs in 3 configurations" in md and "`gan-seed1-w`" in md.split("<details>")[1]
    # shared device and commit are said once, not repeated in every row
    assert "trained on cpu (x86_64 CPU, 1 torch threads) from code commit `abc123def456`" in md
    assert "make run NOTEBOOK=gan PROFILE=quick" in md


def test_provenance_adds_columns_where_runs_differ():
    md = report.provenance("evaluation", "paper", {}, [_run("a", 0, device="cuda"), _run("b", 1, commit="0123456789ab")])
    header = _table(md)[0]
    assert header.endswith("| device | code commit |")
    assert "trained on" not in md


def test_a_mean_is_printed_to_the_precision_its_sd_supports():
    """The sd to one significant digit (two when it starts with 1), the mean to the same place,
    capped at the requested decimals; thousands separated; a vanishing sd is said, not '± 0.00'."""
    f = report.mean_sd_text
    assert f(205.925, 12.397) == "206 ± 12"          # leading 1: two digits, so units
    assert f(5.978, 0.087) == "5.98 ± 0.09"
    assert f(0.8469, 0.0104, 3) == "0.847 ± 0.010"
    assert f(1246.15, 207.75, 1) == "1,200 ± 200"    # hundreds: no spurious decimals
    assert f(-100.72, 0.3178) == "-100.7 ± 0.3"
    assert f(0.65, 0.0012) == "0.65 (sd < 0.01)"     # below the requested precision
    assert f(50, 0.0, 1) == "50.0 ± 0"
    assert f(9.7, None) == "9.70"                    # one seed: no sd
    assert f(0.0148, 0.0014, 3, scale=100) == "1.48 ± 0.14"


def test_the_printed_sd_has_one_or_two_significant_digits_whatever_the_numbers():
    import random

    rng = random.Random(0)
    for _ in range(2000):
        sd = 10 ** rng.uniform(-3, 3)
        text = report.mean_sd_text(rng.uniform(-1e4, 1e4), sd, digits=4)
        mean_txt, _, sd_txt = text.partition(" ± ")
        digits = sd_txt.replace(",", "").replace(".", "").lstrip("0")
        assert 1 <= len(digits.rstrip("0") or "0") <= 2, text
        # the mean stops at the sd's last digit
        decimals = len(sd_txt.split(".")[1]) if "." in sd_txt else 0
        assert (len(mean_txt.split(".")[1]) if "." in mean_txt else 0) == decimals, text


def test_seed_verdicts_follow_welchs_test():
    from scipy import stats

    from mnistgen import report

    a, b = [1.0, 1.1, 0.9], [2.0, 2.2, 1.9]
    assert report.seed_test(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert report.verdict(a, b, lower_is_better=True) == "better"
    assert report.verdict(a, b, lower_is_better=False) == "worse"
    assert report.verdict(a, [1.05, 0.95, 1.2], lower_is_better=True) == "indistinguishable"
    assert report.verdict([1.0], b, lower_is_better=True) == "indistinguishable"  # one seed: no test
    assert report.seed_test([1.0, 1.0], [2.0, 2.0]) is None  # no spread: a t statistic is undefined
    assert report.p_text(a, b).startswith("Welch's t-test over seeds: p = ")
    assert report.p_text([1.0], b) == "no test: n = 1 and 3 seeds"


def _history(fids: dict[int, float], epochs: int) -> list[dict]:
    """A run's history: a loss every epoch, a quality check at the epochs of ``fids``."""
    return [{"epoch": e, "d_loss": 0.7, **({"fid": fids[e]} if e in fids else {})} for e in range(1, epochs + 1)]


def test_quality_checks_are_read_from_the_epochs_that_hold_them():
    h = _history({10: 80.0, 20: 60.0, 30: 60.0, 40: 95.0}, 40)
    assert report.quality_checks(h) == [(10, 80.0), (20, 60.0), (30, 60.0), (40, 95.0)]
    assert report.lowest_check(h) == (20, 60.0)  # the earlier of two equal minima
    assert report.check_nearest(h, 20) == (20, 60.0)
    assert report.check_nearest(h, 25) == (20, 60.0)  # as near as 30: the earlier
    assert report.check_nearest(h, 26) == (30, 60.0)
    assert report.check_nearest(h, 1000) == (40, 95.0)
    with pytest.raises(ValueError, match="no quality check of 'fid'"):
        report.lowest_check(_history({}, 3))
    with pytest.raises(ValueError, match="no quality check of 'inception_score'"):
        report.check_nearest(h, 10, key="inception_score")




def test_where_runs_of_one_configuration_differ_the_cell_says_which_seed_had_which():
    """Issue 43: a "code commit" cell listing two commits did not say which trained what."""
    runs = [_run("gan-seed0-a", 0), _run("gan-seed1-b", 1), _run("gan-seed2-c", 2, commit="0123456789ab")]
    rows = _table(report.provenance("gan", "paper", {}, runs))
    assert rows[0].endswith("| code commit |")
    assert rows[2].endswith("| `abc123def456` (seeds 0, 1); `0123456789ab` (seed 2) |"), rows[2]


def test_a_results_table_keeps_each_mean_and_sd_on_one_line():
    table = report.markdown_table(["model", "FID"], [["GAN", "115 ± 20"], ["VAE", "0.65 (sd < 0.01)"]])
    assert "115\u00a0±\u00a020" in table and "0.65 (sd\u00a0<\u00a00.01)" in table
    block = report.table_block("tab-x", "A caption.", ["a"], [[1]])
    assert block.startswith("```{table} A caption.\n:name: tab-x\n\n| a |") and block.endswith("\n```")


def test_a_log_axis_labelled_only_at_powers_of_ten_stops_the_figure(tmp_path, monkeypatch):
    """Issue 43: the FID panels' log axes were labelled only at 10² and 10³ on a curve from 90 to
    2,000; plots.log_axis labels 100, 200, 500, ...; glue_figure refuses the unreadable one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mnistgen import plots

    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    monkeypatch.setattr(report, "_glue", lambda name, value, display=False: None)
    fig, ax = plt.subplots()
    ax.plot(np.geomspace(90, 2000, 30))
    ax.set_yscale("log")
    assert plots.unreadable_log_axes(fig)
    with pytest.raises(ValueError, match="figure fid: axes 0: the log y axis is labelled only at"):
        report.glue_figure("fid", fig, "smoke")
    for lo, hi in ((90, 2000), (100, 130), (1e-3, 1e2)):
        fig, ax = plt.subplots()
        ax.plot(np.geomspace(lo, hi, 30))
        plots.log_axis(ax)
        assert plots.unreadable_log_axes(fig) == [], (lo, hi)
        report.glue_figure("fid", fig, "smoke")
    assert (tmp_path / "smoke" / "figures" / "fid.png").is_file()
