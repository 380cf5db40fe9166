"""The benchmark runs both sides and writes the documented JSON (timings are not asserted)."""

import json

from benchmarks import throughput


def test_bench_writes_both_sides_and_ratios(tmp_path, data_root):
    out = tmp_path / "bench.json"
    throughput.main(["--steps", "3", "--repeats", "1", "--device", "cpu", "--out", str(out)])
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
