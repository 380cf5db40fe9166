"""Training throughput: the project's loop against the textbook loop, in one process.

    python -m benchmarks.throughput            # or: make bench
    python -m benchmarks.throughput --steps 50 --repeats 5

For each model (GAN, VAE, AC-GAN) it times
- ours: ``mnistgen.train``'s epoch function over the training set resident as one tensor on the
  device (a permutation per epoch, slicing, dynamic binarisation on the batch);
- textbook: the same model, loss and optimiser fed by ``torchvision.datasets.MNIST`` with
  ``ToTensor``/``Normalize`` transforms through a ``DataLoader`` (per-image PIL and Python work),
  as the tutorials write it;
alternately, ``--repeats`` times, and reports medians: images/s for both, their ratio, and the
achieved GFLOP/s (counted by ``torch.utils.flop_counter`` on one step) as a fraction of a matmul
peak measured here. Results go to ``results/bench.json``.

It also measures a ceiling: the matrix products of one of our steps (recorded with their
shapes by a dispatch hook) replayed back to back with nothing between them. Their GFLOP/s
fraction of the peak is the most the step could reach at this batch size if every other
operation (activations, losses, Adam, random numbers, Python) cost nothing.

On a CPU it then times every group of the paper profile, for this code and for the baseline
commit's (``benchmarks/cpu_bill.py``: ms per step, share of the matmul peak, the step's matmul
ceiling, projected hours). On a machine with CUDA it adds the rows of ``benchmarks/steps.py``: ms per step eagerly and as
CUDA graphs at 1 and 8 seeds, and the paper profile's projected wall time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from mnistgen import losses, train
from mnistgen.config import make_config
from mnistgen.data import load_mnist
from mnistgen.runs import DATA_ROOT, REPO_DIR, atomic_write_json, device_name


def matmul_peak_gflops(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    """The fastest of ``reps`` 2048^2 fp32 products: a peak is the best the machine did, not a typical
    time (a one-shot median once read 81 GFLOP/s, below the GAN step's own matrix products)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _RecordMatmuls(TorchDispatchMode):
    """Records (op, argument shapes) of every matrix product dispatched inside the block."""

    OPS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default}

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, list[torch.Size]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.OPS:
            self.calls.append((func, [a.shape for a in args if isinstance(a, torch.Tensor)]))
        return func(*args, **(kwargs or {}))


def matmul_ceiling_gflops(calls: list[tuple[Any, list[torch.Size]]], device: torch.device, reps: int = 20) -> float:
    """GFLOP/s of the recorded matrix products replayed back to back (inputs reused, so cache-warm)."""
    args = [(f, [torch.randn(s, device=device) for s in shapes]) for f, shapes in calls]
    flops = 0
    for f, a in args:
        m, k = a[-2].shape[-2:]
        n = a[-1].shape[-1]
        flops += 2 * m * k * n * (a[-2].shape[0] if a[-2].dim() == 3 else 1)
    for f, a in args:
        f(*a)
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for f, a in args:
            f(*a)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return flops / statistics.median(times) / 1e9


def ours(model: str, batch_size: int, steps: int, device: torch.device, data) -> tuple[float, float, list]:
    """(seconds for ``steps`` training steps, FLOPs per image, the step's matrix products) with the project's loop."""
    cfg = make_config(model, batch_size=batch_size, n_train=batch_size * steps, device=str(device.type))
    st = train.init_state(cfg, device)
    x, y = train.prepare(cfg, data, device)
    step = train.EPOCHS[model]
    step(st, cfg, x[: batch_size * 2], y[: batch_size * 2], False)  # warm-up
    with FlopCounterMode(display=False) as fc, _RecordMatmuls() as rec:
        step(st, cfg, x[:batch_size], y[:batch_size], False)
    flops_per_image = fc.get_total_flops() / batch_size
    _sync(device)
    t0 = time.perf_counter()
    step(st, cfg, x, y, False)
    _sync(device)
    return time.perf_counter() - t0, flops_per_image, rec.calls


def textbook(model: str, batch_size: int, steps: int, device: torch.device, root: Path) -> float:
    """Seconds for ``steps`` steps of the loop the tutorials write."""
    from torchvision import datasets, transforms

    cfg = make_config(model, batch_size=batch_size, device=str(device.type))
    st = train.init_state(cfg, device)
    norm = transforms.Normalize((0.5,), (0.5,)) if model != "vae" else transforms.Lambda(lambda t: t)
    ds = datasets.MNIST(str(root), train=True, download=False, transform=transforms.Compose([transforms.ToTensor(), norm]))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)
    it = iter(loader)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        images, labels = next(it)
        images, labels = images.view(len(images), -1).to(device), labels.to(device)
        if model == "vae":
            vae, opt = st.models["vae"], st.optimizers["vae"]
            xb = torch.bernoulli(images)
            logits, mu, logvar = vae(xb, torch.randn(len(xb), cfg.z_dim, device=device))
            loss = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum") / len(xb) \
                + losses.gaussian_kl(mu, logvar).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            continue
        G, D, opt_g, opt_d = st.models["G"], st.models["D"], st.optimizers["G"], st.optimizers["D"]
        z = torch.randn(len(images), cfg.z_dim, device=device)
        if model == "acgan":
            c = torch.randint(10, (len(images),), device=device)
            fake = G(z, c)
            (rs, rc), (fs, fc) = D(images), D(fake.detach())
            loss_d = losses.acgan_d_loss(rs, rc, fs, fc, labels, c)
        else:
            fake = G(z)
            loss_d = losses.d_loss(D(images), D(fake.detach()))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        if model == "acgan":
            fs, fc = D(fake)
            loss_g = losses.acgan_g_loss(fs, fc, c)
        else:
            loss_g = losses.g_loss(D(fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    _sync(device)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100, help="training steps per timing")
    p.add_argument("--repeats", type=int, default=3, help="alternating timings per side; medians are reported")
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's configured batch size")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(REPO_DIR / "results" / "bench.json"))
    p.add_argument("--skip-bill", action="store_true", help="on CPU: leave out the paper profile's group timings")
    p.add_argument("--baseline", default=None, help="commit whose code the paper bill compares with "
                   "(default: benchmarks.cpu_bill.BASELINE; '' for none)")
    p.add_argument("--bill-steps", type=int, default=40, help="training steps per timed epoch of each paper group")
    args = p.parse_args(argv)
    device = train.resolve_device(args.device)
    data = load_mnist(DATA_ROOT, train=True)
    peaks = [matmul_peak_gflops(device)]  # measured again between the timings below; the best is the peak
    result = {"machine": f"{platform.machine()}, {device_name(device)}", "device": str(device),
              "torch": torch.__version__, "steps": args.steps, "repeats": args.repeats}
    measured = {}
    for model in ("gan", "vae", "acgan"):
        bs = args.batch_size or make_config(model).batch_size
        ours_t, text_t = [], []
        flops, ceilings = 0.0, []
        for _ in range(args.repeats):  # alternate the two sides so drift hits both alike
            t, flops, calls = ours(model, bs, args.steps, device, data)
            ours_t.append(t)
            ceilings.append(matmul_ceiling_gflops(calls, device))
            text_t.append(textbook(model, bs, args.steps, device, DATA_ROOT))
            peaks.append(matmul_peak_gflops(device))
        measured[model] = (bs, ours_t, text_t, flops, ceilings)
    peak = max(peaks)
    result["peak_gflops"] = round(peak, 1)
    result["peak_measurements_gflops"] = [round(p, 1) for p in peaks]
    print(f"matmul peak (2048^2 fp32, best of {len(peaks)} interleaved measurements): {peak:.0f} GFLOP/s "
          f"on {result['machine']}")
    print(f"{'model':8} {'batch':>5} {'ours img/s':>11} {'textbook img/s':>15} {'speedup':>8} {'GFLOP/s':>8} "
          f"{'of peak':>8} {'ceiling':>8}")
    for model, (bs, ours_t, text_t, flops, ceilings) in measured.items():
        n = bs * args.steps
        ours_ips, text_ips = n / statistics.median(ours_t), n / statistics.median(text_t)
        gflops = flops * ours_ips / 1e9
        result[model] = {"batch_size": bs, "ours_img_s": round(ours_ips), "textbook_img_s": round(text_ips),
                         "speedup": round(ours_ips / text_ips, 2), "gflop_per_image": round(flops / 1e9, 6),
                         "achieved_gflops": round(gflops, 1), "peak_fraction": round(gflops / peak, 3),
                         "matmul_ceiling_fraction": round(statistics.median(ceilings) / peak, 3),
                         "epoch_seconds": round(60_000 / ours_ips, 2)}
        r = result[model]
        print(f"{model:8} {bs:5d} {r['ours_img_s']:11,d} {r['textbook_img_s']:15,d} {r['speedup']:7.2f}x "
              f"{gflops:8.0f} {r['peak_fraction']:7.0%} {r['matmul_ceiling_fraction']:7.0%}")
    if device.type == "cpu" and not args.skip_bill:  # the paper edition's bill on this CPU, before and after
        from benchmarks import cpu_bill

        baseline = "" if args.baseline is None else (args.baseline or None)  # "": the default baseline
        result["paper_cpu_bill"] = cpu_bill.bill(baseline, args.bill_steps, args.repeats,
                                                 peak_gflops=peak)
    if device.type == "cuda":  # the GPU rows: eager vs CUDA graphs, and the paper profile's cost there
        from benchmarks import steps

        result["gpu_steps"] = steps.step_table(device, data, 300, args.repeats)
        result["paper_projection"] = steps.paper_projection(device, data, load_mnist(DATA_ROOT, train=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.out), result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
