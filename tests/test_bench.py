"""The benchmark runs both sides and writes the documented JSON (timings are not asserted)."""

import json

from benchmarks import throughput


def test_bench_writes_both_sides_and_ratios(tmp_path, data_root):
    out = tmp_path / "bench.json"
    # the paper groups' bill (benchmarks/cpu_bill.py) takes minutes: its plumbing is tested below
    throughput.main(["--steps", "3", "--repeats", "1", "--device", "cpu", "--out", str(out), "--skip-bill"])
    r = json.loads(out.read_text())
    assert r["peak_gflops"] > 0 and "machine" in r
    # the peak is the best of measurements interleaved with the timings (once before, once per repeat)
    assert len(r["peak_measurements_gflops"]) == 1 + 3 and r["peak_gflops"] == max(r["peak_measurements_gflops"])
    for model in ("gan", "vae", "acgan"):
        m = r[model]
        assert m["ours_img_s"] > 0 and m["textbook_img_s"] > 0
        assert abs(m["speedup"] - m["ours_img_s"] / m["textbook_img_s"]) < 0.05 * m["speedup"] + 0.01
        assert 0 < m["peak_fraction"] and m["gflop_per_image"] > 0
        assert 0 < m["matmul_ceiling_fraction"]
    # the GAN step's FLOPs, counted by torch: ~6.5 MFLOP per image for the paper's MLPs (fwd + bwd)
    assert 5e-3 < r["gan"]["gflop_per_image"] < 8e-3


def test_matmul_recorder_sees_the_steps_products_and_counts_their_flops():
    import torch

    a, b, bias = torch.randn(8, 4), torch.randn(4, 3), torch.randn(3)
    with throughput._RecordMatmuls() as rec:
        torch.addmm(bias, a, b)
        (a @ b).relu()
    ops = [f for f, _ in rec.calls]
    assert ops == [torch.ops.aten.addmm.default, torch.ops.aten.mm.default]
    assert rec.calls[1][1] == [torch.Size([8, 4]), torch.Size([4, 3])]
    assert throughput.matmul_ceiling_gflops(rec.calls, torch.device("cpu"), reps=2) > 0


def test_the_cpu_bill_times_a_group_with_the_code_it_is_given(tmp_path):
    """One paper group, timed in a fresh process with this checkout's code and with a baseline
    commit's (extracted by git archive): each side imports its own mnistgen and reports its step."""
    import pytest

    from benchmarks import cpu_bill

    ours = cpu_bill._measure("vae", cpu_bill.REPO, steps=2, repeats=1)
    assert ours["members"] == 5 and ours["batch_size"] == 128 and ours["epochs"] == 100
    assert ours["ms_per_step"] > 0 and ours["gflop_per_step"] > 0 and ours["matmul_ceiling_gflops"] > 0
    assert ours["total_s"] > ours["epochs"] * ours["steps_per_epoch"] * ours["ms_per_step"] / 1000
    with cpu_bill.baseline_tree(cpu_bill.BASELINE) as tree:
        if tree is None:
            pytest.skip("no git history here (a tarball): the baseline cannot be extracted")
        assert "gan beta1=0.5 batch_size=64" in cpu_bill._baseline_groups(tree, iwae=False)  # the old groups
        theirs = cpu_bill._measure("vae", tree, steps=2, repeats=1)
    assert theirs["mnistgen"].startswith(str(tree)) and theirs["members"] == 5
