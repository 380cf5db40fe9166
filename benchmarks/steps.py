"""Training steps on a GPU, eager against CUDA graphs, and what the paper profile costs there.

    python -m benchmarks.steps                     # on a CUDA machine (make bench calls it there)
    python -m benchmarks.steps --device cpu --steps 20 --epoch-fraction 0.02   # the same code, small, on CPU

Two tables:
- ms per training step of each model at 1 and 8 seeds (the classifier trains one seed), eager and
  graphed (``graphs.DeviceEpoch``), each the median of ``--repeats`` timed epochs of ``--steps``
  steps after a warm-up epoch in which the graphs are captured. A step here includes its share of
  the epoch's draws and the once-per-epoch read of the logs: what training pays.
- the paper profile's wall time, projected from measurements: for every group of runs of
  ``train all --profile paper`` (the sweep, AC-GAN, both VAEs, both classifiers, each with the
  profile's seeds as one batch) one full epoch is timed (after a warm-up epoch), and one call of
  its per-epoch evaluation; then the evaluation chapter's metrics (FID/IS over 10,000 samples,
  the Parzen window, the VAE's NLL with k = 5,000 over 10,000 test images) for one seed, times
  the number of (model, seed, yardstick) they are computed for. The projection is a sum of
  measured parts, not a run of the whole profile; the note says which it is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from mnistgen import edition, evaluators, metrics, runs, train
from mnistgen.config import make_config
from mnistgen.data import MNISTTensors, load_mnist
from mnistgen.models import LeNet, SmallVGG

MODELS = [("gan", {}), ("acgan", {}), ("vae", {}), ("iwae", {"k": 5}), ("iwae", {"k": 50}),
          ("classifier", {"arch": "lenet"}), ("classifier", {"arch": "vgg"})]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_ms(model: str, kw: dict[str, Any], n_seeds: int, graphs: bool, device: torch.device,
            data: MNISTTensors, steps: int, repeats: int) -> float:
    """Median ms per step over ``repeats`` epochs of ``steps`` steps (paper batch size), after a warm-up epoch."""
    base = make_config(model, "paper", **kw)
    cfg = make_config(model, "paper", **kw, n_train=steps * base.batch_size, device=device.type)
    st = train.init_state(cfg, device, list(range(n_seeds)))
    st.cuda_graphs = graphs
    x, y = train.prepare(cfg, data, device)
    train.run_epoch(st, cfg, x, y, False)  # warm-up: lazy initialisation, graph capture
    if graphs and device.type == "cuda":
        train.run_epoch(st, cfg, x, y, False)  # the first epoch's first steps were eager warm-ups
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        train.run_epoch(st, cfg, x, y, False)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / steps


def step_table(device: torch.device, data: MNISTTensors, steps: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for model, kw in MODELS:
        name = kw.get("arch", model) + (f" k={kw['k']}" if "k" in kw else "")
        for s in ((1,) if model == "classifier" else (1, 8)):
            eager = step_ms(model, kw, s, False, device, data, steps, repeats)
            graphed = step_ms(model, kw, s, True, device, data, steps, repeats)
            rows.append({"model": name, "seeds": s, "batch_size": make_config(model, "paper", **kw).batch_size,
                         "eager_ms": round(eager, 3), "graphed_ms": round(graphed, 3),
                         "speedup": round(eager / graphed, 2)})
            print(f"{name:9} seeds {s}: eager {eager:7.3f} ms/step, graphed {graphed:7.3f} ms/step "
                  f"({eager / graphed:.1f}x)", flush=True)
    return rows


def _timed(fn: Any, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def paper_projection(device: torch.device, data: MNISTTensors, test: MNISTTensors,
                     epoch_fraction: float = 1.0) -> dict[str, Any]:
    """Seconds for every run and metric of the paper profile, summed from measured parts (see module doc)."""
    ev = make_config("evaluation", "paper")
    seeds = list(ev.seeds)
    judge = SimpleNamespace(models={"net": LeNet().to(device)})  # an evaluation costs the same untrained
    groups: dict[str, Any] = {}
    for name, group in edition.profile_groups("paper", ev).items():
        overrides = {k: v for k, v in group.items() if k not in ("model", "log_steps")}
        full = make_config(group["model"], "paper", **overrides)
        n_train = max(full.batch_size, int(60_000 * epoch_fraction))
        cfg = make_config(group["model"], "paper", **overrides, n_train=n_train, device=device.type)
        group_seeds = ([cfg.seed] if group["model"] == "classifier" else
                       list(make_config("iwae_table", "paper").seeds) if group["model"] == "iwae" else seeds)
        st = train.init_state(cfg, device, group_seeds)
        x, y = train.prepare(cfg, data, device)
        train.run_epoch(st, cfg, x, y, False)  # warm-up epoch (graphs captured)
        epoch_s = _timed(lambda: train.run_epoch(st, cfg, x, y, False), device) / epoch_fraction
        evaluator = evaluators.for_run(full, data, test, device, judge.models["net"])
        st.epoch = full.epochs  # the evaluator runs at the last epoch whatever its interval
        eval_s = _timed(lambda: evaluator(st), device) if evaluator else 0.0
        n_evals = 0
        if evaluator is not None:
            every = getattr(full, "quality_every", 1) or 1
            n_evals = len({e for e in range(1, full.epochs + 1) if e % every == 0} | {full.epochs})
        total = full.epochs * epoch_s + n_evals * eval_s
        groups[name] = {"seeds": len(group_seeds), "epochs": full.epochs, "epoch_s": round(epoch_s, 3),
                        "evals": n_evals, "eval_s": round(eval_s, 3), "total_s": round(total, 1)}
        print(f"{name:28} {len(group_seeds)} seeds x {full.epochs:3d} epochs x {epoch_s:6.3f} s "
              f"+ {n_evals:3d} evaluations x {eval_s:5.3f} s = {total:7.1f} s", flush=True)
    metrics_s = _metrics_projection(device, data, test, ev)
    total = sum(g["total_s"] for g in groups.values()) + metrics_s["total_s"]
    print(f"paper profile, projected: {total:.0f} s ({total / 60:.1f} min) on {runs.device_name(device)}", flush=True)
    return {"groups": groups, "metrics": metrics_s, "total_s": round(total, 1),
            "how": "sum of measured parts: one timed epoch per group x its epochs, plus its evaluations, "
                   "plus the evaluation chapter's metrics for one seed x (model, seed, yardstick)"}


def _metrics_projection(device: torch.device, data: MNISTTensors, test: MNISTTensors, ev: Any) -> dict[str, Any]:
    """One seed's evaluation-chapter metrics, timed, times how often the chapter computes them."""
    n = ev.n_samples
    images = data.images[:n]
    _, test_features = metrics.classify(LeNet().to(device), test.images)
    fid_s = {arch: _timed(lambda net=net: metrics.sample_quality(net.to(device), images, test_features), device)
             for arch, net in (("lenet", LeNet()), ("vgg", SmallVGG()))}
    valid = data.images[-ev.parzen_n_valid:].reshape(-1, 784).float() / 255
    test_x = test.images[:ev.parzen_n_test].reshape(-1, 784).float() / 255
    parzen_s = _timed(lambda: metrics.parzen_estimate(images.reshape(-1, 784).float() / 255, valid, test_x, device),
                      device)
    vae_cfg = make_config("vae", "paper", device=device.type)
    vae = train.init_state(vae_cfg, device).models["vae"].eval()
    xb = evaluators.binarized_test_set(test, device, ev.nll_images)
    per_batch = 250 if device.type == "cuda" else 10
    g = torch.Generator(device=device).manual_seed(0)
    nll_s = _timed(lambda: [metrics.vae_log_likelihood(vae, b, ev.nll_k, generator=g) for b in xb.split(per_batch)],
                   device)
    n_seeds, n_yard = len(ev.seeds), len(ev.yardsticks)
    table = make_config("iwae_table", "paper")
    n_iwae = (len(table.iwae_ks) + len(table.vae_ks)) * len(table.seeds)  # NLL of every IWAE-table run
    # per generative model (GAN, AC-GAN, VAE) and seed: FID/IS under each yardstick, Parzen once; VAE NLL per
    # seed, and per IWAE-table run (timed on the Kingma-Welling VAE: the Burda decoder is about as costly)
    total = 3 * n_seeds * (sum(fid_s.values()) + parzen_s) + (n_seeds + n_iwae) * nll_s
    out = {"fid_is_s": {k: round(v, 3) for k, v in fid_s.items()}, "parzen_s": round(parzen_s, 3),
           "vae_nll_s": round(nll_s, 3), "total_s": round(total, 1)}
    print(f"metrics per seed: FID/IS {fid_s['lenet']:.2f} / {fid_s['vgg']:.2f} s, Parzen {parzen_s:.2f} s, "
          f"VAE NLL (k {ev.nll_k}, {ev.nll_images} images) {nll_s:.2f} s; all: {total:.0f} s "
          f"(x {n_seeds} seeds, {n_yard} yardsticks)", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=300, help="steps per timed epoch in the step table")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epoch-fraction", type=float, default=1.0,
                   help="time this fraction of each paper epoch and scale (small values: a quick check on CPU)")
    p.add_argument("--skip-projection", action="store_true")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    device = train.resolve_device(args.device)
    data, test = load_mnist(runs.DATA_ROOT, True), load_mnist(runs.DATA_ROOT, False)
    out: dict[str, Any] = {"device": runs.device_name(device), "torch": torch.__version__}
    print(f"training steps on {out['device']} (torch {torch.__version__})", flush=True)
    out["steps"] = step_table(device, data, args.steps, args.repeats)
    if args.out:  # kept even if the projection below is cut short
        runs.atomic_write_json(Path(args.out), out)
    if not args.skip_projection:
        out["paper_projection"] = paper_projection(device, data, test, args.epoch_fraction)
    if args.out:
        runs.atomic_write_json(Path(args.out), out)
        print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
