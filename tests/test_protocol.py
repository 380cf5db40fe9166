"""The measurement protocol: choices on the validation split only, random test subsets, caches that
follow the code behind their numbers, Burda et al.'s schedule and initialisation, independent streams."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from mnistgen import data, evaluate, metrics, runs, steps, train
from mnistgen.config import make_config
from mnistgen.data import MNISTTensors, VALIDATION_SIZE

from conftest import REPO


class Untouchable:
    """Stands in for the test set's tensors: reading them in any way fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test set was read (.{name})")

    def __getitem__(self, item):
        raise AssertionError("the test set was read ([...])")

    def __len__(self):
        return 10_000


def test_every_choice_is_made_without_reading_the_test_set(data_root, monkeypatch):
    """The smoke sweep trains, records its quality history, picks its setting, and the Parzen sigma is
    chosen, all with the test images unreadable; reporting the picked model's numbers reads them."""
    ev = make_config("evaluation", "smoke", seeds=[5, 6])  # seeds no other test trains: these train here
    judge = evaluate.classifier_run("smoke", ev.yardsticks[0])  # a yardstick reports its test accuracy: first
    real = data.load_mnist

    def guarded(root, train=True, **kw):
        return real(root, train, **kw) if train else MNISTTensors(Untouchable(), Untouchable())

    for module in (runs, evaluate):
        monkeypatch.setattr(module, "load_mnist", guarded)
    sweep, choice = evaluate.gan_sweep("smoke", ev, judge)
    assert len(sweep) == 4 and all(len(r["runs"]) == len(ev.seeds) for r in sweep)
    assert all("fid" in r.history[-1] for row in sweep for r in row["runs"])  # judged on the validation split
    picked = next(r for r in sweep if (r["beta1"], r["batch_size"]) == (choice["beta1"], choice["batch_size"]))
    assert picked["fid"] == min(r["fid"] for r in sweep)
    images, _ = evaluate.generate(picked["runs"][0], ev.n_samples)
    sigma, scores = metrics.parzen_select_sigma(data.to_unit(images), evaluate.validation_images(ev, data_root))
    assert math.isfinite(sigma) and len(scores) > 10
    with pytest.raises(AssertionError, match="the test set was read"):
        evaluate.sample_metrics(picked["runs"][0], ev, judge)  # the reported numbers: test set


def test_the_gan_family_trains_on_the_first_50000_and_holds_out_the_rest(mnist_train):
    cfg = make_config("gan", "quick")
    x, _ = train.prepare(cfg, mnist_train, torch.device("cpu"))
    assert len(x) == 60_000 - VALIDATION_SIZE == steps.train_size(cfg)
    assert torch.equal(x, data.to_signed(mnist_train.images[:50_000]))
    for model in ("gan", "acgan", "classifier"):
        assert make_config(model, "quick").validation == VALIDATION_SIZE
    assert make_config("vae", "quick").validation == 0 and make_config("iwae", "quick").validation == 0  # Burda's set
    _, valid = mnist_train.split(VALIDATION_SIZE)
    assert torch.equal(valid.images, mnist_train.images[50_000:])


def test_evaluation_subsets_are_seeded_random_draws_not_prefixes(data_root):
    test = data.load_mnist(data_root, train=False)
    a, b = test.sample(500), test.sample(500)
    assert torch.equal(a.images, b.images)  # the same images for every model
    assert not torch.equal(a.images, test.images[:500])
    # it represents the whole set: every digit, in about its share (500 draws: sd of a share ~0.013)
    share = torch.bincount(a.labels, minlength=10) / 500
    assert (share - torch.bincount(test.labels, minlength=10) / 10_000).abs().max() < 0.05
    assert test.sample(None) is test and test.sample(20_000) is test
    # the binarised NLL images are that subset
    x = evaluate.binarized_test_set(test, torch.device("cpu"), 500)
    assert torch.equal(x, evaluate.binarized_test_set(a, torch.device("cpu")))


def _judge_smoke_gan() -> dict:
    ev = make_config("evaluation", "smoke", seeds=[0])
    judge = evaluate.classifier_run("smoke", "lenet", progress=False)
    run = evaluate.model_runs("gan", "smoke", ev, judge)[0]
    m = evaluate.sample_metrics(run, ev, judge, parzen=False)
    return {"top": m["top_class_share"], "run": run.path.name,
            "files": sorted(p.name for p in run.path.glob("metrics-*.json"))}


METRIC_SCRIPT = textwrap.dedent("""
    import json
    import test_protocol
    print(json.dumps(test_protocol._judge_smoke_gan()))
""")


def test_a_metric_cache_follows_the_source_of_the_code_that_computes_it(tmp_path, data_root):
    """The same run judged by a copy of the package whose metric code differs (a changed
    ``top_class_share``): another cache key, and the number is computed anew, not read back."""
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "profiles", copy / "profiles")
    src = (copy / "src" / "mnistgen" / "evaluate.py").read_text()
    # halved, so the other code's cache still holds a share (tests/test_travel.py ships this session's
    # caches between workers, and import refuses a share outside [0, 1])
    edited = src.replace("return max(histogram) / sum(histogram)", "return max(histogram) / sum(histogram) / 2")
    assert edited != src
    (copy / "src" / "mnistgen" / "evaluate.py").write_text(edited)
    script = tmp_path / "judge.py"
    script.write_text(METRIC_SCRIPT)
    before = _judge_smoke_gan()  # this process: the repository's code, this session's results
    again = _judge_smoke_gan()
    env = {**os.environ, "MNISTGEN_RESULTS": str(runs.RESULTS_ROOT), "MNISTGEN_DATA": str(data_root),
           "PYTHONPATH": os.pathsep.join([str(copy / "src"), str(REPO / "tests")])}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    after = json.loads(r.stdout.strip().splitlines()[-1])
    assert again == before  # unchanged code: read back from the cache
    assert after["run"] == before["run"]  # evaluate.py does not train: the same run, not retrained
    assert len(after["files"]) == len(before["files"]) + 1  # a new key beside the old one
    assert after["top"] == pytest.approx(before["top"] / 2)  # computed by the edited code


def test_iwae_decoder_output_bias_starts_at_the_logit_of_the_mean_training_image(mnist_train):
    cfg = make_config("iwae", "smoke", epochs=1, lr=1e-7)
    st = train.train(cfg, train.init_state(cfg, torch.device("cpu")), mnist_train, progress=False)
    x, _ = train.prepare(cfg, mnist_train, torch.device("cpu"))
    p = x.mean(0).clamp(steps.OUTPUT_BIAS_CLAMP, 1 - steps.OUTPUT_BIAS_CLAMP)
    bias = st.models["vae"].dec[-1].bias.detach().reshape(-1)
    # one epoch of Adam at lr 1e-7 moves a weight by at most lr (1 - b1) / sqrt(1 - b2) ~ 3.2 lr per step
    n_steps = math.ceil(steps.train_size(cfg) / cfg.batch_size)
    assert (bias - torch.log(p / (1 - p))).abs().max() <= 3.2e-7 * n_steps
    vae = make_config("vae", "smoke")  # the Kingma-Welling VAE keeps PyTorch's initialisation
    assert steps.FAMILIES[vae.model].init_from_data is None


def test_each_seed_has_independent_streams_that_no_other_seed_shares():
    from mnistgen.state import stream_seed

    seeds = {(s, p): stream_seed(s, p) for s in range(200) for p in ("init", "data", "noise")}
    assert len(set(seeds.values())) == len(seeds)  # the noise of seed s is not the data order of seed s + 1
    g = lambda s, p: torch.Generator().manual_seed(seeds[s, p])
    assert not torch.equal(torch.randperm(100, generator=g(1, "data")), torch.randperm(100, generator=g(0, "noise")))


def test_the_inception_score_is_the_mean_over_ten_splits():
    confident = torch.eye(10).repeat(100, 1)  # 1,000 confident, balanced: every split scores 10
    mean, sd = metrics.inception_score_splits(confident)
    assert mean == pytest.approx(10.0) and sd == pytest.approx(0.0, abs=1e-9)
    probs = torch.softmax(torch.randn(1000, 10, generator=torch.Generator().manual_seed(0)) * 3, 1)
    parts = [metrics.inception_score(p) for p in probs.tensor_split(10)]
    assert metrics.inception_score_splits(probs) == (pytest.approx(sum(parts) / 10),
                                                     pytest.approx(float(torch.tensor(parts).std())))


def test_published_anchors_are_the_sources_numbers():
    """The file against the sources it names (Burda et al. 2016, Table 1; nbip/IWAE's README at
    0216b45; Goodfellow et al. 2014, Table 1): a typo here would pass every other test."""
    from mnistgen import report

    def column(name, objective):
        return [report.published_value(report.published(name), "test_nll", objective=objective, k=k) for k in (1, 5, 50)]

    assert column("burda2015", "vae") == [86.76, 86.47, 86.35]
    assert column("burda2015", "iwae") == [86.76, 85.54, 84.78]
    assert column("nbip_iwae", "iwae") == [86.35, 85.18, 84.59]
    assert column("nbip_iwae", "vae") == [86.35, 86.10, 86.06]
    assert "0216b45" in report.published("nbip_iwae")["url"]
    assert report.published("goodfellow2014")["rows"] == [{"model": "gan", "parzen_ll": 225, "parzen_se": 2}]
