"""Judge trained runs the same way: samples -> classifier features -> metrics, cached per run.

A model chapter and the evaluation chapter ask for the same numbers and get the same numbers:
each run's metrics are computed once, stored beside its checkpoint in ``metrics-<key>.json``
(key = evaluation settings + the classifier run that judged it + the source of the code that
computes them, ``METRIC_SOURCES``), and reused afterwards.

Data: the test set is read only for reported numbers. Every choice (the sweep's pick, the Parzen
sigma) is made on the validation split, the last 10,000 training images, on which no GAN-family
model trains; fewer than all test images means a seeded random subset, the same for every model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import metrics
from .metrics import classify
from .config import EvalConfig, make_config
from .data import VALIDATION_SIZE, load_mnist, to_unit
from .runs import (DATA_ROOT, RESULTS_ROOT, Run, RunBusy, atomic_write_bytes, atomic_write_json, code_version,
                   exclusive, get_member_runs, get_run, get_runs, installed_bundle)
from .evaluators import binarized_test_set
from .numerics import flush_subnormals
from .train import to_uint8

EVAL_SEED = 31337  # the noise behind every model's judged samples


def classifier_run(profile: str, arch: str = "lenet", device: str | None = None, **kw: Any) -> Run:
    """A yardstick: trained once per profile (and cached like any run), never a judged model."""
    return get_run(make_config("classifier", profile, arch=arch, device=device), profile, **kw)


def yardsticks(profile: str, ev: EvalConfig, **kw: Any) -> dict[str, Run]:
    """Every classifier that judges samples, by architecture name; the first is the main one.

    One another process is training is left for last (this process trains the others meanwhile).
    The first pass goes from the last yardstick to the first: the first (the judge during GAN
    training) is the one another chapter is most likely waiting for, so it is left to that one.
    """
    done: dict[str, Run] = {}
    for wait in (False, True):
        for arch in (reversed(ev.yardsticks) if not wait else ev.yardsticks):
            if arch not in done:
                try:
                    done[arch] = classifier_run(profile, arch, ev.device, wait=wait, **kw)
                except RunBusy:
                    continue
    return {arch: done[arch] for arch in ev.yardsticks}


def model_runs(model: str, profile: str, ev: EvalConfig, judge: Run | None = None, wait: bool = True,
               **overrides: Any) -> list[Run]:
    """One finished run per seed of ``ev.seeds`` (trained together where they are missing)."""
    cfg = make_config(model, profile, **{**overrides, "device": overrides.get("device") or ev.device})
    return get_runs(cfg, profile, list(ev.seeds), judge=judge, wait=wait)


def gan_sweep(profile: str, ev: EvalConfig, judge: Run, beta1s: Any = None, batch_sizes: Any = None,
              **overrides: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The paper's open choices measured: every (beta1, batch size) with the profile's seeds.

    Returns one row per setting (final FID, IS and top-class share under ``judge``, mean and sd
    over seeds, from each run's last quality check) and the setting the rule picks: the lowest
    mean final FID. The rule was fixed before any result was seen (``config.SweepConfig``).
    ``overrides`` (e.g. epochs) apply to every setting's GAN configuration.
    """
    sweep = make_config("gan_sweep", profile, beta1s=beta1s, batch_sizes=batch_sizes)
    settings = [(b1, bs) for b1 in sweep.beta1s for bs in sweep.batch_sizes]
    done: dict[tuple[float, int], list[Run]] = {}
    # Every beta1 of one batch size trains as one batch of members (they differ only in Adam's
    # betas), as ``train all`` groups them, so the run ids and the bits are the same either way.
    # Batch sizes another process is training (chapters render in parallel) are left for later:
    # this process trains the others meanwhile, then waits only for what is still running.
    for wait in (False, True):
        for batch_size in sweep.batch_sizes:
            if (sweep.beta1s[0], batch_size) in done:
                continue
            cfgs = [dataclasses.replace(make_config("gan", profile, **{**overrides, "beta1": b1, "batch_size": batch_size,
                                                                       "device": overrides.get("device") or ev.device}),
                                        seed=s) for b1 in sweep.beta1s for s in ev.seeds]
            try:
                rs = get_member_runs(cfgs, profile, judge=judge, wait=wait)
            except RunBusy:
                continue
            for i, b1 in enumerate(sweep.beta1s):
                done[b1, batch_size] = rs[i * len(ev.seeds):(i + 1) * len(ev.seeds)]
    rows = []
    for beta1, batch_size in settings:
        runs = done[beta1, batch_size]
        finals = [r.history[-1] for r in runs]
        row: dict[str, Any] = {"beta1": beta1, "batch_size": batch_size, "epochs": runs[0].cfg.epochs,
                               "seeds": list(ev.seeds), "runs": runs}
        for key in ("fid", "inception_score", "top_class_share"):
            row.update(mean_sd(key, [f[key] for f in finals]))
        rows.append(row)
    best = min(rows, key=lambda r: r["fid"])
    return rows, {"beta1": best["beta1"], "batch_size": best["batch_size"],
                  "rule": "lowest mean final FID (first yardstick) over seeds"}


def mean_sd(key: str, values: Any) -> dict[str, float | None]:
    """``{key: mean, key_sd: sample standard deviation (None for one value)}``."""
    v = np.asarray(list(values), dtype=float)
    return {key: float(v.mean()), f"{key}_sd": float(v.std(ddof=1)) if len(v) > 1 else None}


@torch.no_grad()
def generate(run: Run, n: int, seed: int = EVAL_SEED, batch_size: int = 5000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples as uint8 (n, 28, 28) on CPU, plus the requested labels for the AC-GAN.

    GAN/AC-GAN: tanh output mapped to [0, 255]. VAE: the decoder's Bernoulli means.
    """
    g = torch.Generator(device=run.device).manual_seed(seed)
    model = run.cfg.model
    labels = torch.arange(n, device=run.device) % 10 if model == "acgan" else None
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        z = torch.randn(m, run.cfg.z_dim, generator=g, device=run.device)
        if model == "gan":
            out.append(to_uint8(run.models["G"](z)))
        elif model == "acgan":
            out.append(to_uint8(run.models["G"](z, labels[start:start + m])))
        elif model == "vae":
            p = torch.sigmoid(run.models["vae"].decode(z))
            out.append((p * 255).round().to(torch.uint8).cpu())
        else:
            raise ValueError(f"cannot sample from a {model} run")
    images = torch.cat(out).reshape(n, 28, 28)
    return images, None if labels is None else labels.cpu()


# The code behind a cached metric, besides the run it judges (whose id covers its training code):
# sampling and the metric recipes (this file), the estimators, data loading and test subsets.
METRIC_SOURCES = ("evaluate.py", "metrics.py", "evaluators.py", "data.py", "numerics.py", "models")


def _cache_key(ev: EvalConfig, clf: Run, what: str) -> str:
    """Evaluation settings + the judging run + the source of the code that computes the number."""
    d = dataclasses.asdict(ev)
    d.pop("device")
    d.pop("seeds")
    key = json.dumps({"eval": d, "classifier": clf.path.name, "what": what, "code": metric_code(clf.path)},
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def _cached(path: Path, compute) -> dict[str, Any]:
    with exclusive(path.with_name(f".{path.name}.lock"), path.name):  # chapters rendered in parallel share these
        if path.is_file():
            return json.loads(path.read_text())
        flush_subnormals()  # as in training: the same numbers, and no slow subnormals (numerics.py)
        value = compute()
        atomic_write_json(path, value)
        return value


def validation_images(ev: EvalConfig, data_root: Path) -> torch.Tensor:
    """The Parzen sigma's validation images in [0, 1]: a random subset of the validation split (the
    last 10,000 training images, which no GAN-family model trains on), as Goodfellow et al.
    trained on 50,000 and chose sigma on the other 10,000."""
    return to_unit(load_mnist(data_root, True).split(VALIDATION_SIZE)[1].sample(ev.parzen_n_valid).images)


def _parzen_sets(ev: EvalConfig, data_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation images for sigma, test images scored): both random subsets, the same for every model."""
    return validation_images(ev, data_root), to_unit(load_mnist(data_root, False).sample(ev.parzen_n_test).images)


def sample_metrics(run: Run, ev: EvalConfig, clf: Run, data_root: Path = DATA_ROOT,
                   parzen: bool = True) -> dict[str, Any]:
    """FID, IS, predicted-class histogram, Parzen log-likelihood (and AC-GAN class accuracy) of ``run``.

    ``parzen=False`` (a second yardstick: the Parzen window does not depend on the classifier)
    skips the Parzen estimate."""
    def compute() -> dict[str, Any]:
        images, labels = generate(run, ev.n_samples)
        probs, feats = classify(clf.models["net"], images)
        test = load_mnist(data_root, False)
        _, test_feats = classify(clf.models["net"], test.images)
        pred = probs.argmax(1)
        is_mean, is_sd = metrics.inception_score_splits(probs)
        out: dict[str, Any] = {
            "fid": metrics.fid_from_features(feats, test_feats),
            "inception_score": is_mean, "inception_score_split_sd": is_sd,
            "class_histogram": torch.bincount(pred, minlength=10).tolist(),
            "n_samples": ev.n_samples,
        }
        out["top_class_share"] = top_class_share(out["class_histogram"])
        if parzen:
            valid, test_x = _parzen_sets(ev, data_root)
            out.update(metrics.parzen_estimate(to_unit(images), valid, test_x, run.device))
        if labels is not None:
            correct = pred == labels
            out["class_accuracy"] = float(correct.float().mean())
            out["class_accuracy_per_class"] = [float(correct[labels == c].float().mean()) for c in range(10)]
        return out

    return _cached(run.path / f"metrics-{_cache_key(ev, clf, 'samples' if parzen else 'samples-no-parzen')}.json",
                   compute)


def vae_nll(run: Run, ev: EvalConfig, data_root: Path = DATA_ROOT, images_per_batch: int | None = None) -> dict[str, Any]:
    """Importance-sampled test NLL (k = ``ev.nll_k``) and test ELBO on the fixed binarised test set.

    ``images_per_batch`` images share each chunk of 1,000 importance samples: 10 on CPU (the
    setting of every cached CPU result), 250 on a GPU (a 250 x 1,000 x 784 batch of decoder logits)."""
    def compute() -> dict[str, Any]:
        per_batch = images_per_batch or (250 if run.device.type == "cuda" else 10)
        test = load_mnist(data_root, False)
        x = binarized_test_set(test, run.device, ev.nll_images)
        g = torch.Generator(device=run.device).manual_seed(EVAL_SEED)
        vae = run.models["vae"]
        ll = torch.cat([metrics.vae_log_likelihood(vae, xb, ev.nll_k, generator=g)
                        for xb in x.split(per_batch)]).cpu()
        from .evaluators import vae_test_metrics

        elbo = vae_test_metrics(run.state, test.sample(ev.nll_images), run.device)[0]["test_elbo"]
        return {"test_nll": float(-ll.mean()), "test_nll_se": float(ll.std() / np.sqrt(len(ll))),
                "test_elbo": elbo, "nll_k": ev.nll_k, "nll_images": ev.nll_images}

    return _cached(run.path / f"nll-{_cache_key(ev, run, 'nll')}.json", compute)


def iwae_table(profile: str, ev: EvalConfig, data_root: Path = DATA_ROOT, **overrides: Any) -> list[dict[str, Any]]:
    """The rows of metrics.json's ``vae_iwae``: for every (objective, k) of the profile's
    ``iwae_table`` the runs of its seeds (trained as one batch, or reused), each scored with the
    importance-sampled NLL (``vae_nll``, k = ``ev.nll_k``) and its active units on the same fixed
    binarised test images. ``overrides`` (e.g. epochs) apply to every row's configuration."""
    table = make_config("iwae_table", profile)
    ev = dataclasses.replace(ev, nll_images=table.nll_images)
    rows = []
    for objective, ks in (("iwae", table.iwae_ks), ("vae", table.vae_ks)):
        for k in ks:
            cfg = make_config("iwae", profile, objective=objective, k=k,
                              **{**overrides, "device": overrides.get("device") or ev.device})
            rs = get_runs(cfg, profile, list(table.seeds))
            nlls = [vae_nll(r, ev, data_root) for r in rs]
            units = [active_units(r, data_root) for r in rs]
            rows.append({"objective": objective, "k": k, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                         "seeds": list(table.seeds), **mean_sd("test_nll", [n["test_nll"] for n in nlls]),
                         **mean_sd("active_units", units), "nll_k": ev.nll_k, "nll_images": ev.nll_images,
                         "per_seed": [{"seed": r.cfg.seed, "test_nll": n["test_nll"], "active_units": u}
                                      for r, n, u in zip(rs, nlls, units)],
                         "runs": [r.path.name for r in rs]})
    return rows


def active_units(run: Run, data_root: Path = DATA_ROOT) -> int:
    """The run's active latent units (Burda et al.) on all 10,000 binarised test images (encoders
    are cheap), cached beside the run."""
    def compute() -> dict[str, Any]:
        x = binarized_test_set(load_mnist(data_root, False), run.device)
        return {"active_units": metrics.active_units(run.models["vae"].eval(), x)}

    return _cached(run.path / f"units-{_code_key(run, 'active units')}.json", compute)["active_units"]


def nearest_training_distance(run: Run, n: int = 10, data_root: Path = DATA_ROOT) -> float:
    """Mean Euclidean distance (pixels in [0, 1]) from ``n`` of the run's samples (``generate``) to
    their nearest image among those it trained on (the first 50,000), cached beside the run."""
    def compute() -> dict[str, Any]:
        train = load_mnist(data_root, True).split(VALIDATION_SIZE)[0]
        q = to_unit(generate(run, n)[0])
        pool = to_unit(train.images)
        return {"distance": float((q - pool[nearest_neighbours(q, pool)[:, 0]]).norm(dim=1).mean()), "n": n}

    return _cached(run.path / f"nn-{_code_key(run, f'nearest training image, {n} samples')}.json", compute)["distance"]


def _code_key(run: Run, what: str) -> str:
    """A cache key for a number that depends only on its run and the code that computes it."""
    key = json.dumps({"what": what, "code": metric_code(run.path)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def metric_code(run_dir: Path) -> str:
    """The version of the metric code behind the caches of the run in ``run_dir``: this checkout's,
    unless its profile renders a bundle made by other code (installed on request, ``bundle.py``),
    whose numbers are then read as that code computed them."""
    bundle = installed_bundle(run_dir.parents[1].name, run_dir.parents[2])
    if bundle is not None and bundle.get("other_code"):
        return bundle["provenance"]["metric_code_version"]
    return code_version(METRIC_SOURCES)


def real_metrics(ev: EvalConfig, clf: Run, data_root: Path = DATA_ROOT) -> dict[str, Any]:
    """The floor and ceiling: real training images judged exactly like generated ones."""
    def compute() -> dict[str, Any]:
        train, test = load_mnist(data_root, True), load_mnist(data_root, False)
        real = train.split(VALIDATION_SIZE)[0].sample(ev.n_samples).images  # the GANs' training images
        probs, feats = classify(clf.models["net"], real)
        test_probs, test_feats = classify(clf.models["net"], test.images)
        valid, test_x = _parzen_sets(ev, data_root)
        is_mean, is_sd = metrics.inception_score_splits(probs)
        out = {"fid": metrics.fid_from_features(feats, test_feats),
               "inception_score": is_mean, "inception_score_split_sd": is_sd,
               "test_inception_score": metrics.inception_score_splits(test_probs)[0],
               "class_histogram": torch.bincount(probs.argmax(1), minlength=10).tolist(),
               "n_samples": ev.n_samples}
        out.update(metrics.parzen_estimate(to_unit(real), valid, test_x, clf.device))
        return out

    return _cached(clf.path / f"real-{_cache_key(ev, clf, 'real')}.json", compute)


def save_samples(run: Run, ev: EvalConfig, path: Path) -> None:
    """The exact images a model is judged on, for outside tools: uint8 (n, 28, 28) [+ labels]."""
    images, labels = generate(run, ev.n_samples)
    arrays = {"images": images.numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def results_path(profile: str, root: Path = RESULTS_ROOT) -> Path:
    return Path(root) / profile


SUMMARY_KEYS = {
    "gan": ("fid", "inception_score", "top_class_share", "parzen_ll", "parzen_se"),
    "acgan": ("fid", "inception_score", "class_accuracy", "top_class_share", "parzen_ll", "parzen_se"),
    "vae": ("fid", "inception_score", "top_class_share", "test_nll", "test_elbo", "parzen_ll", "parzen_se"),
}
YARDSTICK_KEYS = ("fid", "inception_score", "class_accuracy")


def summarize(model: str, seeds: list[int], per_seed: list[dict[str, Any]],
              by_yardstick: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One model's entry of metrics.json: every metric's mean over seeds with ``<metric>_sd`` beside
    it (sample sd; None for one seed), the seeds, each seed's values, and FID / IS / class
    accuracy under every yardstick (the top-level values are the first yardstick's)."""
    out: dict[str, Any] = {"seeds": list(seeds), "n_seeds": len(seeds)}
    for key in SUMMARY_KEYS[model]:
        out.update(mean_sd(key, [r[key] for r in per_seed]))
    if model == "vae":
        out["nll_k"], out["nll_images"] = per_seed[0]["nll_k"], per_seed[0]["nll_images"]
    out["n_samples"] = per_seed[0]["n_samples"]
    out["per_seed"] = [{"seed": s, **{k: r[k] for k in SUMMARY_KEYS[model]}} for s, r in zip(seeds, per_seed)]
    out["by_yardstick"] = {}
    for name, rows in by_yardstick.items():
        entry: dict[str, Any] = {}
        for key in YARDSTICK_KEYS:
            if key in rows[0]:
                entry.update(mean_sd(key, [r[key] for r in rows]))
        out["by_yardstick"][name] = entry
    return out


def top_class_share(histogram: list[int]) -> float:
    """The share of samples in the most frequent predicted class: 0.1 balanced, 1.0 one digit only."""
    return max(histogram) / sum(histogram)


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, pool: torch.Tensor, k: int = 1, batch_size: int = 5000) -> torch.Tensor:
    """Indices (Q, k) of the ``k`` rows of ``pool`` nearest (Euclidean) to each query row."""
    q = queries.double()
    best_d = torch.full((len(q), k), float("inf"), dtype=torch.float64)
    best_i = torch.zeros((len(q), k), dtype=torch.long)
    for start in range(0, len(pool), batch_size):
        p = pool[start:start + batch_size].double()
        d = torch.cdist(q, p)
        d_all = torch.cat([best_d, d], 1)
        i_all = torch.cat([best_i, torch.arange(start, start + len(p)).expand(len(q), -1)], 1)
        best_d, order = d_all.topk(k, dim=1, largest=False)
        best_i = i_all.gather(1, order)
    return best_i
