"""Judge trained runs the same way: samples -> classifier features -> metrics, cached per run.

A model chapter and the evaluation chapter ask for the same numbers and get the same numbers:
each run's metrics are computed once, stored beside its checkpoint in ``metrics-<key>.json``
(key = evaluation settings + the classifier run that judged it), and reused afterwards.
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
from .config import EvalConfig, make_config
from .data import MNISTTensors, load_mnist, to_unit
from .runs import DATA_ROOT, RESULTS_ROOT, Run, atomic_write_bytes, atomic_write_json, exclusive, get_run
from .train import binarized_test_set, to_uint8

EVAL_SEED = 31337  # the noise behind every model's judged samples


def classifier_run(profile: str, **kw: Any) -> Run:
    """The yardstick: trained once per profile (and cached like any run), never a judged model."""
    return get_run(make_config("classifier", profile), profile, **kw)


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


@torch.no_grad()
def classify(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities, 128-d features) of uint8 images, on CPU."""
    device = next(net.parameters()).device
    probs, feats = [], []
    for chunk in images.split(batch_size):
        f = net.features(to_unit(chunk).to(device))
        feats.append(f.cpu())
        probs.append(torch.softmax(net.head(f), dim=1).cpu())
    return torch.cat(probs), torch.cat(feats)


def _cache_key(ev: EvalConfig, clf: Run, what: str) -> str:
    d = dataclasses.asdict(ev)
    d.pop("device")
    d.pop("seeds")
    key = json.dumps({"eval": d, "classifier": clf.path.name, "what": what}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def _cached(path: Path, compute) -> dict[str, Any]:
    with exclusive(path.with_name(f".{path.name}.lock"), path.name):  # chapters rendered in parallel share these
        if path.is_file():
            return json.loads(path.read_text())
        value = compute()
        atomic_write_json(path, value)
        return value


def _parzen_sets(ev: EvalConfig, data_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation = the last images of the training set (the models trained on all 60,000, as
    Goodfellow et al. trained on 50,000 and validated on the other 10,000: stated in the text)."""
    train, test = load_mnist(data_root, True), load_mnist(data_root, False)
    return to_unit(train.images[-ev.parzen_n_valid:]), to_unit(test.images[:ev.parzen_n_test])


def sample_metrics(run: Run, ev: EvalConfig, clf: Run, data_root: Path = DATA_ROOT) -> dict[str, Any]:
    """FID, IS, predicted-class histogram, Parzen log-likelihood (and AC-GAN class accuracy) of ``run``."""
    def compute() -> dict[str, Any]:
        images, labels = generate(run, ev.n_samples)
        probs, feats = classify(clf.models["net"], images)
        test = load_mnist(data_root, False)
        _, test_feats = classify(clf.models["net"], test.images)
        pred = probs.argmax(1)
        out: dict[str, Any] = {
            "fid": metrics.fid_from_features(feats, test_feats),
            "inception_score": metrics.inception_score(probs),
            "class_histogram": torch.bincount(pred, minlength=10).tolist(),
            "n_samples": ev.n_samples,
        }
        valid, test_x = _parzen_sets(ev, data_root)
        out.update(metrics.parzen_estimate(to_unit(images), valid, test_x))
        if labels is not None:
            correct = pred == labels
            out["class_accuracy"] = float(correct.float().mean())
            out["class_accuracy_per_class"] = [float(correct[labels == c].float().mean()) for c in range(10)]
        return out

    return _cached(run.path / f"metrics-{_cache_key(ev, clf, 'samples')}.json", compute)


def vae_nll(run: Run, ev: EvalConfig, data_root: Path = DATA_ROOT, images_per_batch: int = 10) -> dict[str, Any]:
    """Importance-sampled test NLL (k = ``ev.nll_k``) and test ELBO on the fixed binarised test set."""
    def compute() -> dict[str, Any]:
        test = load_mnist(data_root, False)
        x = binarized_test_set(test, run.device, ev.nll_images)
        g = torch.Generator(device=run.device).manual_seed(EVAL_SEED)
        vae = run.models["vae"]
        ll = torch.cat([metrics.vae_log_likelihood(vae, xb, ev.nll_k, generator=g)
                        for xb in x.split(images_per_batch)]).cpu()
        from .train import vae_test_metrics

        elbo = vae_test_metrics(run.state, MNISTTensors(test.images[:ev.nll_images], test.labels[:ev.nll_images]),
                                run.device)["test_elbo"]
        return {"test_nll": float(-ll.mean()), "test_nll_se": float(ll.std() / np.sqrt(len(ll))),
                "test_elbo": elbo, "nll_k": ev.nll_k, "nll_images": ev.nll_images}

    return _cached(run.path / f"nll-{_cache_key(ev, run, 'nll')}.json", compute)


def real_metrics(ev: EvalConfig, clf: Run, data_root: Path = DATA_ROOT) -> dict[str, Any]:
    """The floor and ceiling: real training images judged exactly like generated ones."""
    def compute() -> dict[str, Any]:
        train, test = load_mnist(data_root, True), load_mnist(data_root, False)
        real = train.images[:ev.n_samples]  # the first n training images vs the test set
        probs, feats = classify(clf.models["net"], real)
        test_probs, test_feats = classify(clf.models["net"], test.images)
        valid, test_x = _parzen_sets(ev, data_root)
        out = {"fid": metrics.fid_from_features(feats, test_feats),
               "inception_score": metrics.inception_score(probs),
               "test_inception_score": metrics.inception_score(test_probs),
               "class_histogram": torch.bincount(probs.argmax(1), minlength=10).tolist(),
               "n_samples": ev.n_samples}
        out.update(metrics.parzen_estimate(to_unit(real), valid, test_x))
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
    "gan": ("fid", "inception_score", "parzen_ll", "parzen_se"),
    "acgan": ("fid", "inception_score", "class_accuracy", "parzen_ll", "parzen_se"),
    "vae": ("fid", "inception_score", "test_nll", "test_elbo", "parzen_ll", "parzen_se"),
}


def summarize(per_seed: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Mean over seeds of each metric, with ``<key>_std`` beside it when more than one seed ran."""
    out: dict[str, dict[str, float]] = {}
    for model, rows in per_seed.items():
        out[model] = {}
        for key in SUMMARY_KEYS[model]:
            values = np.array([r[key] for r in rows], dtype=float)
            out[model][key] = float(values.mean())
            if len(values) > 1:
                out[model][f"{key}_std"] = float(values.std(ddof=1))
        if model == "vae":
            out[model]["nll_k"] = rows[0]["nll_k"]
            out[model]["nll_images"] = rows[0]["nll_images"]
        out[model]["n_samples"] = rows[0]["n_samples"]
    return out


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
