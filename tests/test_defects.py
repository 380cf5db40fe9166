"""Tests that fail on their defect (issue 44, item 6).

A reviewer put plausible one-line bugs into the code, one at a time, and no unit test noticed.
Each test here was run against its mutation in a scratch copy of ``src`` and failed there
(the mutation is named in the test's docstring), and passes on the real code:

1. ``transfer.install_runs`` accepting a file with no SHA-256 in ``packed["sums"]``;
2. a configuration field (e.g. ``beta1``) left out of a run's identity;
3. the GAN step ignoring ``cfg.saturating``;
4. the Parzen sigma chosen on the GANs' training images (or the test set), not the validation split;
5. the Parzen standard error reported as the standard deviation;
6. FID's covariances with ddof=0;
7. (pytest-timeout) a deadlocked test failing with a traceback instead of hanging.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
import sys
import textwrap
import time
import types
import typing

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from mnistgen import evaluate, metrics, runs, steps
from mnistgen.config import CONFIGS, TrainConfig, make_config
from mnistgen.data import VALIDATION_SIZE, MNISTTensors
from mnistgen.state import init_state

from conftest import REPO


# --- 1. runs from a worker: a file without a SHA-256 is refused ----------------------------------
# (A SHA-256 announced for a file that was not sent, and a changed byte, are refused in
# tests/test_travel.py::test_damaged_runs_on_the_wire_are_refused_whole; not repeated here.)

@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, data_root):
    """Two finished runs (seeds 0 and 1 of a tiny VAE, a second of training) of a profile "t":
    real manifests, histories and checkpoints, as a worker sends them."""
    root = tmp_path_factory.mktemp("worker")
    cfg = make_config("vae", n_train=64, batch_size=32, epochs=1, z_dim=2, hidden=8, device="cpu")
    got = runs.get_runs(cfg, "t", [0, 1], results_root=root, data_root=data_root, progress=False, log=lambda s: None)
    return runs.results_dir("t", root), [r.path.name for r in got]


@pytest.mark.parametrize("unlisted", ["checkpoint.pt", "manifest.json", "history.json", "the second run"])
def test_install_runs_refuses_a_file_without_a_sha256_and_installs_nothing(tmp_path, two_runs, unlisted):
    """Every file that arrives must be vouched for by its own SHA-256 in ``packed["sums"]``: a file
    the sums do not list (here: one of the first run's files, or every file of the second run) is
    refused, naming it, before anything is installed, whatever the other files.

    Mutation caught: ``packed["sums"].get(name, "")`` -> ``.get(name, hashlib.sha256(data).hexdigest())``
    in ``transfer.install_runs`` (a file without a sum vouches for itself)."""
    from mnistgen.transfer import TransferError, install_runs, pack_runs

    src, rids = two_runs
    packed = pack_runs(src, rids)
    assert len(packed["files"]) >= 6 and packed["sums"].keys() == packed["files"].keys()
    drop = ([n for n in packed["sums"] if n.startswith(rids[1] + "/")] if unlisted == "the second run"
            else [f"{rids[0]}/{unlisted}"])
    assert drop and all(n in packed["files"] for n in drop)
    sums = {n: s for n, s in packed["sums"].items() if n not in drop}
    dest = runs.results_dir("t", tmp_path)
    with pytest.raises(TransferError, match="|".join(map(re.escape, drop))):
        install_runs({"files": packed["files"], "sums": sums}, dest, "test")
    assert not [p for p in dest.rglob("*") if p.is_file()]  # nothing installed, no staging left behind
    # the same runs with their sums install whole: the refusal was the missing sum, nothing else
    assert install_runs(packed, dest, "test") == sorted(rids)
    assert all((dest / "runs" / n).read_bytes() == b for n, b in packed["files"].items())


# --- 2. every configuration field is part of a run's identity ------------------------------------

# Fields that by design do not change what a run computes, and why.
NOT_IN_IDENTITY = {
    "device": "where a run computes, not what: a GPU-trained run is reused on CPU (TrainConfig.identity)",
}


def _train_configs() -> list[type]:
    found, todo = [], [TrainConfig]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not TrainConfig:
            found.append(cls)
    return sorted(set(found), key=lambda c: c.__name__)


def _other_value(cls: type, f: dataclasses.Field) -> typing.Any:
    """A valid value of field ``f`` of ``cls`` other than its default (make_config checks it)."""
    m, default = f.metadata, f.default
    tp = typing.get_type_hints(cls)[f.name]
    if m.get("choices"):
        return next(c for c in m["choices"] if c != default)
    if tp is bool:
        return not default
    if default is None:  # an optional number (n_train): its lowest value
        return m["lo"]
    lo, hi = m.get("lo"), m.get("hi")
    if tp is int:
        return default + 1 if hi is None or default + 1 <= hi else default - 1
    if tp is float:
        half = default / 2
        return half if default != 0 and (lo is None or half >= lo) else (default + hi) / 2
    raise TypeError(f"{cls.__name__}.{f.name}: no rule for a field of type {tp}")


def test_every_training_config_is_registered():
    """The walk below covers every TrainConfig subclass: each is a model make_config builds."""
    registered = {c for c in CONFIGS.values() if isinstance(c, type) and issubclass(c, TrainConfig)}
    assert set(_train_configs()) == registered
    assert {"GANConfig", "ACGANConfig", "VAEConfig", "IWAEConfig", "ClassifierConfig"} <= {
        c.__name__ for c in registered}


@pytest.mark.parametrize("cls", _train_configs(), ids=lambda c: c.model)
def test_every_config_field_changes_the_run_id(cls):
    """Changing any one field (to another valid value) gives another run id and another identity;
    the fields listed in NOT_IN_IDENTITY (with their reason) change neither.

    Mutation caught: ``identity()`` dropping a field, e.g. ``d.pop("beta1")``: two runs that
    differ in beta1 would share one run folder (the second reuses the first's weights)."""
    base = make_config(cls.model)
    fields = dataclasses.fields(cls)
    assert fields, cls
    changes_id, unchanged = [], []
    for f in fields:
        value = _other_value(cls, f)
        other = make_config(cls.model, **{f.name: value})  # a valid value: make_config checks it
        assert getattr(other, f.name) == value != getattr(base, f.name), f.name
        differs = (runs.run_id(other) != runs.run_id(base), other.identity() != base.identity())
        (changes_id if all(differs) else unchanged).append(f.name)
        if f.name not in NOT_IN_IDENTITY:
            assert all(differs), f"{cls.__name__}.{f.name} = {value!r} leaves the run id / identity unchanged"
    assert sorted(unchanged) == sorted(n for n in NOT_IN_IDENTITY if n in {f.name for f in fields})
    assert len(changes_id) == len(fields) - len(unchanged)


# --- 3. the saturating-loss flag reaches the GAN's step ------------------------------------------

@pytest.mark.parametrize("model", ["gan", "acgan"])
def test_the_gan_step_uses_the_configured_generator_loss(float64, model):
    """One training step of ``steps.FAMILIES[model]`` (D's update, then G's) leaves in G's
    parameters the gradient of the generator loss the configuration names, computed here directly
    with autograd from D's outputs (after D's update) on G(z) of the same z:

    saturating:      mean_i log(1 - sigmoid(l_i))       (the generator's half of eq. 1)
    non-saturating: -mean_i log sigmoid(l_i)

    (plus the class cross-entropy for the AC-GAN), and G's weights moved by Adam's first step on
    that gradient: lr * g / (|g| + eps). D is made to reject the samples (logits near -3, as
    early in training), where the two losses' gradients differ by a factor of about 20.
    float64: the oracle and the step differ only in rounding (~1e-16 relative); the tolerance
    is 1e-9 of the gradient's scale, the two losses' gradients differ by O(1) of it.

    Mutation caught: the step calling ``losses.g_loss(D(fake))`` (or ``acgan_g_loss(..., False)``),
    i.e. ignoring ``cfg.saturating``."""
    b, n = 6, 16
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 784, generator=g) * 2 - 1
    y = torch.randint(10, (n,), generator=g)
    idx = torch.randperm(n, generator=g)[:b][None]
    grads = {}
    for saturating in (True, False):
        cfg = make_config(model, z_dim=4, hidden=8, batch_size=b, saturating=saturating, device="cpu")
        st = init_state(cfg, torch.device("cpu"))
        G, D = st.models["G"], st.models["D"]
        with torch.no_grad():
            (D.source if model == "acgan" else D.head).bias.fill_(-3.0)
        fam = steps.FAMILIES[model]
        draws = fam.draw(st, cfg, b, torch.device("cpu"))
        G0 = copy.deepcopy(G)
        out = fam.step(st, cfg, x, y, idx, draws, True, False)

        # the oracle: G before the step, D after its update (G's step sees the updated D)
        z = draws["z"]
        fake = G0(z, draws["fake_labels"]) if model == "acgan" else G0(z)
        src, cls_logits = D(fake) if model == "acgan" else (D(fake), None)
        d = torch.sigmoid(src)
        assert 0.01 < float(d.detach().mean()) < 0.2  # D rejects the samples
        loss = torch.log(1 - d).mean() if saturating else -torch.log(d).mean()
        if model == "acgan":
            loss = loss + torch.nn.functional.cross_entropy(cls_logits.reshape(-1, cls_logits.shape[-1]),
                                                            draws["fake_labels"].reshape(-1))
        want = torch.autograd.grad(loss, list(G0.parameters()))
        got = [p.grad for p in G.parameters()]
        scale = max(float(w.abs().max()) for w in want)
        for (name, _), gw, gg in zip(G.named_parameters(), want, got):
            assert gg is not None, name
            assert torch.allclose(gg, gw, rtol=0, atol=1e-9 * scale), (
                f"G's gradient ({name}) is not that of the {'' if saturating else 'non-'}saturating loss: "
                f"off by {float((gg - gw).abs().max()):.3g}, gradient scale {scale:.3g}")
        assert float(out["g_loss"].sum()) == pytest.approx(float(loss.detach()), rel=1e-12)
        # G moved by Adam's first step on exactly this gradient
        for (name, p1), p0, gw in zip(G.named_parameters(), G0.parameters(), want):
            step = cfg.lr * gw / (gw.abs() + 1e-8)
            assert torch.allclose(p0.detach() - p1.detach(), step, rtol=0, atol=1e-9 * cfg.lr), name
        grads[saturating] = torch.cat([w.flatten() for w in want])
    # the two settings give G different gradients, far beyond the tolerance above
    gap = float((grads[True] - grads[False]).abs().max())
    assert gap > 0.1 * float(grads[False].abs().max()), gap


# --- 4. the Parzen sigma is chosen on the validation split ---------------------------------------

def _marked_mnist(n: int, which: int) -> MNISTTensors:
    """``n`` images whose pixels 0 and 1 hold their index (base 256) and pixel 2 which file they
    come from (1: training, 2: test); the rest is zero."""
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    i = torch.arange(n)
    images[:, 0, 0], images[:, 0, 1], images[:, 0, 2] = i % 256, i // 256, which
    return MNISTTensors(images, torch.zeros(n, dtype=torch.int64))


def _origin(unit: torch.Tensor) -> tuple[set[int], torch.Tensor]:
    """(files, indices) of images in [0, 1] (N, 784) made by ``_marked_mnist``."""
    px = (unit[:, :3] * 255).round().long()
    return set(px[:, 2].tolist()), px[:, 0] + 256 * px[:, 1]


@pytest.fixture
def marked_mnist(monkeypatch):
    """MNIST as evaluate.py reads it, every image marked with where it comes from."""
    fake = {True: _marked_mnist(60_000, 1), False: _marked_mnist(10_000, 2)}
    monkeypatch.setattr(evaluate, "load_mnist", lambda root, train=True, **kw: fake[train])


def test_the_parzen_validation_images_are_the_last_10000_training_images(marked_mnist, tmp_path):
    """The images sigma is chosen on are drawn from the last 10,000 training images (the GANs train
    on the first 50,000), none from the GANs' training images or the test set; the images scored
    are the test set's.

    Mutation caught: ``validation_images`` taking ``load_mnist(...).split(VALIDATION_SIZE)[0]``
    (the GANs' training images) instead of ``[1]``."""
    ev = make_config("evaluation", "smoke", parzen_n_valid=500, parzen_n_test=300)
    files, idx = _origin(evaluate.validation_images(ev, tmp_path))
    assert files == {1} and len(idx) == 500 == len(set(idx.tolist()))
    assert int(idx.min()) >= 60_000 - VALIDATION_SIZE and int(idx.max()) < 60_000
    valid, test = evaluate._parzen_sets(ev, tmp_path)
    assert torch.equal(valid, evaluate.validation_images(ev, tmp_path))
    files, idx = _origin(test)
    assert files == {2} and len(idx) == 300 == len(set(idx.tolist()))


def test_sample_metrics_choose_sigma_on_validation_images_and_score_test_images(marked_mnist, tmp_path, monkeypatch):
    """What a model's (and the real images') Parzen estimate receives: its samples, validation
    images for sigma, test images to score (the estimator itself is stubbed to record them).

    Mutations caught: the validation split replaced by the training images (as above), or
    validation and test images swapped on the way to ``parzen_estimate``."""
    seen = []

    def record(samples, valid, test, device=None):
        seen.append((samples, valid, test))
        return {"parzen_ll": 0.0, "parzen_se": 0.0, "parzen_sigma": 0.1}

    monkeypatch.setattr(metrics, "parzen_estimate", record)
    ev = make_config("evaluation", "smoke", n_samples=100, parzen_n_valid=200, parzen_n_test=150)
    generated = torch.full((ev.n_samples, 28, 28), 7, dtype=torch.uint8)
    monkeypatch.setattr(evaluate, "generate", lambda run, n, **kw: (generated[:n], None))
    monkeypatch.setattr(evaluate, "classify", lambda net, images: (torch.full((len(images), 10), 0.1),
                                                                   torch.randn(len(images), 3, dtype=torch.float64)))
    root = tmp_path / "t" / "runs"
    run = types.SimpleNamespace(path=root / "gan-seed0-0123456789", device=torch.device("cpu"), models={})
    clf = types.SimpleNamespace(path=root / "classifier-seed0-0123456789", device=torch.device("cpu"), models={"net": None})
    run.path.mkdir(parents=True)
    clf.path.mkdir(parents=True)
    evaluate.sample_metrics(run, ev, clf, data_root=tmp_path)
    evaluate.real_metrics(ev, clf, data_root=tmp_path)
    assert len(seen) == 2
    for samples, valid, test in seen:
        files, idx = _origin(valid)
        assert files == {1} and len(idx) == 200 and int(idx.min()) >= 60_000 - VALIDATION_SIZE
        assert _origin(test)[0] == {2} and len(test) == 150
    assert torch.equal(seen[0][0], torch.full((100, 784), 7 / 255, dtype=seen[0][0].dtype))  # the samples
    files, idx = _origin(seen[1][0])  # the real images judged: the GANs' training images
    assert files == {1} and int(idx.max()) < 60_000 - VALIDATION_SIZE


def _clusters(centres: torch.Tensor, scale: float, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return centres[torch.arange(n) % len(centres)] + scale * torch.randn(n, centres.shape[1], generator=g,
                                                                           dtype=centres.dtype)


def test_parzen_estimate_chooses_sigma_on_its_validation_argument(float64):
    """Constructed so that each set would choose its own sigma: 10 mixture centres 28 apart (20 e_i
    in 20 dimensions: the nearest centre's term dominates every log-sum-exp, the others' weigh
    less than e^-270 at the largest sigma searched, 1.2), the
    validation images 0.3 (per dimension) from their centre, the test images 0.08. Then the mean
    log-likelihood over a set is maximised at sigma^2 = mean squared distance to the nearest
    centre / dimension (the oracle, from the data in float64), which the grid search meets to
    within its resolution (coarse factor 1.31, then 0.1 of the best: at most 8% off here); the
    test set's would be ~4x smaller, the samples' (distance 0) the grid's lowest.

    Mutations caught: sigma chosen on the test images or on the samples (the images that built
    the mixture); the log-likelihood not of the test images at the chosen sigma."""
    d = 20
    centres = 20.0 * torch.eye(d)[:10]
    valid, test = _clusters(centres, 0.3, 400, 1), _clusters(centres, 0.08, 300, 2)

    def best_sigma(x):
        return float(torch.cdist(x, centres).pow(2).amin(1).mean().div(d).sqrt())

    want_valid, want_test = best_sigma(valid), best_sigma(test)
    assert abs(want_valid - 0.3) < 0.03 and abs(want_test - 0.08) < 0.01
    est = metrics.parzen_estimate(centres, valid, test)
    assert est["parzen_sigma"] == pytest.approx(want_valid, rel=0.08)
    assert abs(est["parzen_sigma"] - want_test) > 0.5 * want_valid  # not the test set's choice
    ll = metrics.parzen_log_likelihood(centres, test, est["parzen_sigma"])
    assert est["parzen_ll"] == pytest.approx(float(ll.mean()), rel=1e-12)


# --- 5. the Parzen standard error is the standard error of the mean ------------------------------

def test_parzen_standard_error_is_sd_over_sqrt_n(monkeypatch):
    """``parzen_se`` is the standard error of the mean test log-likelihood: the sample standard
    deviation (ddof=1) over sqrt(n), against numpy and scipy.stats.sem on constructed values
    (n = 400: the sd is 20x the se, and ddof=0 would be 0.13% off, far beyond 1e-12).

    Mutation caught: ``parzen_se`` returned as ``ll.std()`` (the sd of the log-likelihoods)."""
    rng = np.random.default_rng(0)
    values = -300.0 + 25.0 * rng.standard_normal(400)
    monkeypatch.setattr(metrics, "parzen_select_sigma", lambda samples, valid: (0.2, {0.2: 0.0}))
    monkeypatch.setattr(metrics, "parzen_log_likelihood", lambda samples, x, sigma: torch.tensor(values))
    est = metrics.parzen_estimate(torch.zeros(3, 2), torch.zeros(5, 2), torch.zeros(400, 2))
    se = np.std(values, ddof=1) / np.sqrt(len(values))
    assert se == pytest.approx(scipy.stats.sem(values), rel=1e-12)
    assert est["parzen_se"] == pytest.approx(se, rel=1e-12)
    assert est["parzen_ll"] == pytest.approx(values.mean(), rel=1e-12)
    assert abs(est["parzen_se"] - np.std(values, ddof=0) / np.sqrt(len(values))) > 1e-4 * se


# --- 6. FID's covariances are the unbiased ones ---------------------------------------------------

def _fid_oracle(f1: np.ndarray, f2: np.ndarray) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets, computed independently of
    metrics.py: covariances by hand with n - 1, and Tr((C1 C2)^1/2) as Tr((C1^1/2 C2 C1^1/2)^1/2),
    the square root of a symmetric matrix (eigh; scipy's sqrtm as a second opinion)."""
    def stats(f):
        mu = f.mean(0)
        c = f - mu
        return mu, c.T @ c / (len(f) - 1)

    (m1, c1), (m2, c2) = stats(f1), stats(f2)
    w, v = np.linalg.eigh(c1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = r1 @ c2 @ r1
    w2 = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = np.sqrt(np.clip(w2, 0, None)).sum()
    assert tr_sqrt == pytest.approx(np.trace(scipy.linalg.sqrtm(c1 @ c2)).real, rel=1e-9)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * tr_sqrt)


def test_fid_uses_unbiased_covariances(monkeypatch):
    """FID of small constructed feature sets (n = 6 and 5, 3 features, float64) against an
    independent numpy/scipy oracle. With n this small, ddof=0 scales each covariance by (n-1)/n,
    which moves the FID by ~20% (asserted below); both computations are backward-stable on these
    well-conditioned 3x3 matrices (condition numbers < 100), so they agree to ~1e-13 relative:
    the tolerance 1e-9 is far from both.

    Mutation caught: ``np.cov(f, rowvar=False, ddof=0)`` (or ``bias=True``) in ``gaussian_stats``."""
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(6, 3)) @ np.array([[2.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.7]])
    f2 = rng.normal(size=(5, 3)) * np.array([0.5, 1.5, 1.0]) + np.array([1.0, -0.5, 0.2])
    want = _fid_oracle(f1, f2)
    got = metrics.fid_from_features(f1, f2)
    assert got == pytest.approx(want, rel=1e-9)
    assert metrics.fid_from_features(torch.from_numpy(f1), torch.from_numpy(f2)) == pytest.approx(want, rel=1e-9)

    # what ddof=0 would give (the oracle on sets shrunk about their means by sqrt((n-1)/n), whose
    # unbiased covariances are the originals' biased ones): far outside the tolerance
    n1, n2 = len(f1), len(f2)
    s1 = f1.mean(0) + (f1 - f1.mean(0)) * np.sqrt((n1 - 1) / n1)  # same mean, the ddof=0 covariance
    s2 = f2.mean(0) + (f2 - f2.mean(0)) * np.sqrt((n2 - 1) / n2)
    ddof0 = _fid_oracle(s1, s2)
    assert abs(ddof0 - want) > 0.05 * abs(want)


# --- 7. a deadlocked test fails with a traceback (pytest-timeout) --------------------------------

DEADLOCK_TESTS = textwrap.dedent("""
    from pathlib import Path

    from mnistgen import runs


    def test_a_free_lock_is_taken_at_once():
        with runs.exclusive(Path({free!r}), "a free run"):
            pass


    def test_a_lock_held_by_another_process_waits_for_it():
        with runs.exclusive(Path({held!r}), "a run another process holds"):
            pass
""")


def test_a_test_deadlocked_on_a_run_lock_fails_with_its_traceback(tmp_path):
    """pytest, configured by this project's pyproject.toml with ``--timeout 2``, on two tests: one
    takes a free run lock and passes; the other asks for a run lock this process holds, so
    ``runs.exclusive`` waits on the flock forever. pytest-timeout (method signal, from the
    project's configuration) fails it after 2 s with the traceback of where it waited, and the
    session ends in seconds instead of hanging."""
    held, free = tmp_path / "held" / ".lock", tmp_path / "free" / ".lock"
    script = tmp_path / "test_deadlock.py"
    script.write_text(DEADLOCK_TESTS.format(free=str(free), held=str(held)))
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path),
           "-p", "no:cacheprovider", "--timeout", "2", "-o", "console_output_style=classic", str(script)]
    with runs.exclusive(held, "a run this test holds"):
        start = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
        wall = time.monotonic() - start
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-3000:]
    assert "timeout: 2.0s" in out and "timeout method: signal" in out, out[:2000]
    assert "1 failed, 1 passed" in out, out[-3000:]
    assert re.search(r"FAILED \S*test_deadlock.py::test_a_lock_held_by_another_process_waits_for_it", out), out[-3000:]
    assert "Timeout (>2.0s) from pytest-timeout" in out, out[-3000:]
    # the traceback shows where it waited: runs.exclusive's blocking flock
    assert re.search(r"def exclusive\(.*\n>\s+fcntl\.flock\(f, fcntl\.LOCK_EX\)\nE\s+Failed: Timeout \(>2\.0s\) "
                     r"from pytest-timeout\.\n\n\S*mnistgen/runs\.py:\d+: Failed", out, re.S), out[-3000:]
    assert wall < 60, wall  # seconds (interpreter and torch start-up), not a hang


TIMEOUT_PROBE = textwrap.dedent("""
    import pytest_timeout


    def pytest_collection_finish(session):
        for item in session.items:
            print("TIMEOUT", item.nodeid, pytest_timeout._get_item_settings(item).timeout)
""")


def test_notebook_cells_get_nbvals_timeout_and_heavy_tests_more_than_the_default(tmp_path):
    """What each kind of item may take, as tests/conftest.py sets it from pyproject.toml: an
    ordinary test the configured default; a notebook cell nbval's cell timeout (600 s here) plus its
    kernel start-up timeout plus a minute, so that nbval's own timeout (with the cell's traceback)
    always fires first and a slow cell is never killed by pytest-timeout; a slow test twice the
    bound of the book build. Only collection: nothing runs."""
    import tomllib

    ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    default = float(ini["timeout"])
    assert ini["timeout_method"] == "signal" and default > 0
    addopts = ini["addopts"].split()
    cell = float(addopts[addopts.index("--nbval-cell-timeout") + 1])
    (tmp_path / "timeout_probe.py").write_text(TIMEOUT_PROBE)
    ordinary = "tests/test_defects.py::test_fid_uses_unbiased_covariances"
    slow = "tests/test_travel.py::test_damaged_runs_on_the_wire_are_refused_whole"
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTEST_TIMEOUT"}
    env["PYTHONPATH"] = str(tmp_path) + ((":" + env["PYTHONPATH"]) if env.get("PYTHONPATH") else "")
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                        "-p", "timeout_probe", "tests/golden/01_gan_objective.ipynb", ordinary, slow],
                       capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    got = dict(line[len("TIMEOUT "):].rsplit(" ", 1) for line in r.stdout.splitlines() if line.startswith("TIMEOUT "))
    got = {k: float(v) for k, v in got.items()}  # node ids of cells have spaces: "...ipynb::Cell 3"
    cells = {k: v for k, v in got.items() if k.startswith("tests/golden/")}
    assert len(cells) >= 5, r.stdout[-3000:]
    assert set(cells.values()) == {cell + 60 + 60}  # nbval's default kernel start-up timeout: 60 s
    assert got[ordinary] == default and got[slow] == 1800 > default

