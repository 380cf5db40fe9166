"""Training loops, run cache, determinism, resume after SIGKILL, refusal of bad checkpoints."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mnistgen import runs, train
from mnistgen.config import make_config

TINY = dict(n_train=256, batch_size=64, epochs=3, device="cpu")


def _state(run):
    return {f"{k}.{n}": t for k, m in run.models.items() for n, t in m.state_dict().items()}


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("model", ["gan", "acgan", "vae", "iwae", "classifier"])
def test_one_epoch_changes_every_parameter_and_logs_finite_values(model, mnist_train):
    extra = {"k": 5} if model == "iwae" else {}
    cfg = make_config(model, epochs=1, n_train=128, batch_size=64, device="cpu", **extra)
    st = train.init_state(cfg, torch.device("cpu"))
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in st.models.items()}
    train.train(cfg, st, mnist_train, progress=False)
    for k, m in st.models.items():
        changed = [not torch.equal(a, b) for a, b in zip(before[k], m.parameters())]
        if model == "acgan" and k == "G":
            changed = changed[1:] if not changed[0] else changed  # only the sampled labels' embedding rows move
        assert all(changed), f"{model}.{k}: some parameters did not move"
    row = st.history[-1]
    assert row["epoch"] == 1 and all(torch.isfinite(torch.tensor(v)) for v in row.values() if isinstance(v, float))


def test_same_seed_gives_bitwise_identical_weights_and_history(tmp_path, data_root):
    cfg = make_config("gan", **TINY)
    a = runs.get_run(cfg, "t", results_root=tmp_path / "a", data_root=data_root, log=lambda s: None)
    b = runs.get_run(cfg, "t", results_root=tmp_path / "b", data_root=data_root, log=lambda s: None)
    assert_identical(_state(a), _state(b))
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(a.history) == strip(b.history)
    c = runs.get_run(make_config("gan", seed=1, **TINY), "t", results_root=tmp_path / "a", data_root=data_root)
    assert not torch.equal(_state(a)["G.net.0.0.weight"], _state(c)["G.net.0.0.weight"])


def test_completed_run_is_reused_and_a_changed_parameter_retrains(tmp_path, data_root):
    cfg = make_config("vae", **TINY)
    first = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    assert not first.cached
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 0 and manifest["epochs"] == 3
    assert {"python", "torch", "torchvision", "numpy"} <= set(manifest["versions"])
    again = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    assert again.cached and again.path == first.path
    assert_identical(_state(first), _state(again))
    other = runs.get_run(make_config("vae", **{**TINY, "z_dim": 3}), "t", results_root=tmp_path, data_root=data_root)
    assert other.path != first.path and not other.cached
    # the device is not part of a run's identity: a GPU-trained run is picked up on CPU
    assert runs.run_id(make_config("vae", **{**TINY, "device": "auto"})) == runs.run_id(cfg)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from mnistgen import runs
    from mnistgen.config import make_config
    kill_after = int(sys.argv[2])
    save = runs.save_checkpoint
    def save_then_maybe_die(path, cfg, st, i=0):
        save(path, cfg, st, i)
        if st.epoch == kill_after and i == st.n_seeds - 1:  # every seed's epoch saved, the next one begun
            os.kill(os.getpid(), signal.SIGKILL)   # no cleanup, no atexit: as a crash or OOM kill
    runs.save_checkpoint = save_then_maybe_die
    cfg = make_config("acgan", n_train=256, batch_size=64, epochs=4, device="cpu")
    runs.get_runs(cfg, "t", [0, 1, 2], results_root=sys.argv[1], data_root=sys.argv[3], progress=False)
""")


def test_sigkill_mid_batch_then_rerun_resumes_and_matches_an_uninterrupted_batch(tmp_path, data_root):
    """Three seeds trained as one batch, killed after epoch 2: the rerun resumes all three, bitwise."""
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    killed = subprocess.run([sys.executable, str(script), str(tmp_path / "r"), "2", str(data_root)],
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    run_dirs = sorted((tmp_path / "r" / "t" / "runs").iterdir())
    assert len(run_dirs) == 3
    for run_dir in run_dirs:
        assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "manifest.json").exists()
        assert not list(run_dir.glob(".*tmp"))  # the atomic write left no temporary file
    resumed = subprocess.run([sys.executable, str(script), str(tmp_path / "r"), "-1", str(data_root)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("from epoch 2 of 4") == 3
    cfg = make_config("acgan", n_train=256, batch_size=64, epochs=4, device="cpu")
    done = runs.get_runs(cfg, "t", [0, 1, 2], results_root=tmp_path / "r", data_root=data_root)
    clean = runs.get_runs(cfg, "t", [0, 1, 2], results_root=tmp_path / "clean", data_root=data_root)
    for d, c in zip(done, clean):
        assert d.cached and d.state.epoch == 4
        assert_identical(_state(d), _state(c))
        assert [r["d_loss"] for r in d.history] == [r["d_loss"] for r in c.history]
        assert json.loads((d.path / "manifest.json").read_text())["trained_with_seeds"] == [0, 1, 2]


def _incomplete_run(tmp_path, data_root, epochs_done=1):
    cfg = make_config("gan", **{**TINY, "epochs": epochs_done})
    run = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    return run


def test_truncated_checkpoint_is_refused_and_left_alone(tmp_path, data_root):
    cfg = make_config("gan", **TINY)
    run = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    ckpt = run.path / "checkpoint.pt"
    blob = ckpt.read_bytes()[:5000]
    ckpt.write_bytes(blob)
    with pytest.raises(runs.CheckpointError, match="corrupt or truncated.*retrain"):
        runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    assert ckpt.read_bytes() == blob  # nothing overwritten
    fresh = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root, retrain=True)
    assert fresh.state.epoch == 3


def test_checkpoint_of_another_configuration_is_refused(tmp_path, data_root):
    cfg = make_config("gan", **TINY)
    run = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    other = make_config("gan", **{**TINY, "hidden": 32})
    st = train.init_state(other, torch.device("cpu"))
    with pytest.raises(runs.CheckpointError, match="another configuration.*hidden"):
        runs.load_checkpoint(run.path / "checkpoint.pt", other, st)


def test_a_finished_run_from_a_gpu_loads_here_and_an_unfinished_one_is_refused_plainly(tmp_path, data_root):
    """A run written on a GPU box holds a CUDA generator's state (16 bytes: seed and offset), which a
    CPU generator cannot take. Finished, its weights are all a book needs; unfinished, its random
    streams cannot continue here. (Found on an H100: every checkpoint, finished or not, then failed
    to load there too, because the generator states were mapped onto the GPU.)"""
    cfg = make_config("gan", **TINY)
    run = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    ckpt = run.path / "checkpoint.pt"
    payload = torch.load(ckpt, weights_only=True)
    payload["state"]["noise_rng"] = torch.zeros(16, dtype=torch.uint8)  # as torch.Generator("cuda").get_state()
    torch.save(payload, ckpt)
    again = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    assert again.cached
    assert_identical(_state(again), {f"{k}.{n}": v for k, m in payload["state"]["models"].items() for n, v in m.items()})
    payload["state"]["epoch"] = 2  # the same run, unfinished
    torch.save(payload, ckpt)
    (run.path / "manifest.json").unlink()
    with pytest.raises(runs.CheckpointError, match="unfinished run started on another kind of device.*resume it where"):
        runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)


def test_checkpoint_of_another_architecture_is_refused(tmp_path, data_root):
    cfg = make_config("gan", **TINY)
    run = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    payload = torch.load(run.path / "checkpoint.pt", weights_only=True)
    payload["state"]["models"]["G"]["net.0.0.weight"] = torch.zeros(3, 3)
    torch.save(payload, run.path / "checkpoint.pt")
    st = train.init_state(cfg, torch.device("cpu"))
    with pytest.raises(runs.CheckpointError, match="does not fit this architecture"):
        runs.load_checkpoint(run.path / "checkpoint.pt", cfg, st)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickled_object_is_not_executed(tmp_path):
    """weights_only=True: a checkpoint that would run code on load is refused."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "checkpoint.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": 1, "x": Evil()}, f)
    cfg = make_config("gan", **TINY)
    with pytest.raises(runs.CheckpointError, match="corrupt or truncated"):
        runs.load_checkpoint(path, cfg, train.init_state(cfg, torch.device("cpu")))
    assert not (tmp_path / "pwned").exists()


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path, data_root, monkeypatch):
    cfg = make_config("gan", **TINY)
    saved = []
    real_step = train.EPOCHS["gan"]
    calls = {"n": 0}

    def poisoned(st, cfg, x, y, log_steps):
        calls["n"] += 1
        if calls["n"] == 2:  # the second epoch's data hold a NaN
            x = x.clone()
            x[:] = float("nan")
        return real_step(st, cfg, x, y, log_steps)

    monkeypatch.setitem(train.EPOCHS, "gan", poisoned)
    with pytest.raises(train.TrainingDiverged, match=r"non-finite \w+ at epoch 2, step 1 of 4.*epoch 1"):
        runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    (run_dir,) = (tmp_path / "t" / "runs").iterdir()
    assert not (run_dir / "manifest.json").exists()  # never rendered as a finished run
    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert payload["state"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in payload["state"]["models"]["G"].values())


def test_unavailable_cuda_is_refused_plainly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(train.DeviceError, match="'cuda' was requested but torch sees no CUDA GPU"):
        train.resolve_device("cuda")
    assert train.resolve_device("auto") == torch.device("cpu")


WAIT_SCRIPT = textwrap.dedent("""
    import sys
    from mnistgen import runs
    from mnistgen.config import make_config
    cfg = make_config("gan", n_train=256, batch_size=64, epochs=int(sys.argv[2]), device="cpu")
    run = runs.get_run(cfg, "t", results_root=sys.argv[1], data_root=sys.argv[3], progress=False)
    print("cached" if run.cached else "trained", run.state.epoch)
""")


def test_two_processes_asking_for_one_run_train_it_once(tmp_path, data_root, caplog):
    """The second process waits on the run's lock, then reuses what the first trained."""
    import fcntl
    import time

    script = tmp_path / "get.py"
    script.write_text(WAIT_SCRIPT)
    first = subprocess.Popen([sys.executable, str(script), str(tmp_path / "r"), "40", str(data_root)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cfg = make_config("gan", n_train=256, batch_size=64, epochs=40, device="cpu")
    lock = tmp_path / "r" / "t" / "runs" / runs.run_id(cfg) / ".lock"
    deadline = time.monotonic() + 60
    while True:  # wait until the first process holds the lock (it is training)
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        if lock.exists():
            with open(lock) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_UN)
                except BlockingIOError:
                    break
        time.sleep(0.05)
    with caplog.at_level("INFO", logger="mnistgen.runs"):
        second = runs.get_run(cfg, "t", results_root=tmp_path / "r", data_root=data_root)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert out.split() == ["trained", "40"]
    assert "waiting for another process to finish " + lock.parent.name in caplog.text
    assert second.cached and second.state.epoch == 40


@pytest.mark.parametrize("model", ["gan", "acgan"])
def test_one_d_pass_over_real_and_fake_gives_the_two_pass_gradients(model, mnist_train):
    """Oracle: the textbook step (D on the real batch, then on the fake batch) with the same RNG."""
    from mnistgen import losses

    cfg = make_config(model, n_train=64, batch_size=64, epochs=1, lr=1e-7, device="cpu")  # lr ~ 0: D barely moves
    ours, ref = train.init_state(cfg, torch.device("cpu")), train.init_state(cfg, torch.device("cpu"))
    x, y = train.prepare(cfg, mnist_train, torch.device("cpu"))
    grads = {}

    def recording(name, opt):
        step = opt.step

        def step_and_record():  # the gradients each optimiser is about to apply
            grads[name] = [p.grad.clone() for p in opt.param_groups[0]["params"]]
            return step()
        return step_and_record

    for name, opt in ours.optimizers.items():
        opt.step = recording(name, opt)
    train.EPOCHS[model](ours, cfg, x, y, False)

    G, D = ref.models["G"], ref.models["D"]
    idx = torch.randperm(len(x), generator=ref.data_rngs[0])
    z = torch.randn(64, cfg.z_dim, generator=ref.noise_rngs[0])
    if model == "acgan":
        c = torch.randint(10, (64,), generator=ref.noise_rngs[0])
        fake = G(z, c)
        (rs, rc), (fs, fc) = D(x[idx]), D(fake.detach())
        loss_d = losses.acgan_d_loss(rs, rc, fs, fc, y[idx], c)
    else:
        fake = G(z)
        loss_d = losses.d_loss(D(x[idx]), D(fake.detach()))
    ref.optimizers["D"].zero_grad()
    loss_d.backward()
    for a, b in zip(grads["D"], D.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=1e-4, atol=1e-7)
    ref.optimizers["D"].step()
    loss_g = losses.acgan_g_loss(*D(fake), c) if model == "acgan" else losses.g_loss(D(fake))
    ref.optimizers["G"].zero_grad()
    loss_g.backward()
    for a, b in zip(grads["G"], G.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=1e-4, atol=1e-7)


# --- seeds trained as one batch -------------------------------------------------------------

def _detached_copy(st, i):
    """Seed ``i`` of ``st`` as a single-seed state with its own copies of the generators."""
    one = st.select([i])
    for rngs in (one.data_rngs, one.noise_rngs):
        g = torch.Generator(device=rngs[0].device)
        g.set_state(rngs[0].get_state())
        rngs[0] = g
    return one


def _record_gradients(st):
    """Make every optimiser of ``st`` keep a copy of the gradients it is about to apply."""
    grads = {}
    for name, opt in st.optimizers.items():
        def step(opt=opt, name=name, inner=opt.step):
            grads[name] = [p.grad.clone() for p in opt.param_groups[0]["params"]]
            return inner()
        opt.step = step
    return grads


@pytest.mark.parametrize("model", ["gan", "acgan", "vae", "iwae"])
def test_a_batch_of_seeds_gives_each_seeds_own_single_seed_updates(model, mnist_train):
    """Oracle: 200 steps of seeds {0, 1, 2} trained together; before every step each seed is
    copied out and stepped alone from the same weights, optimiser moments and generators.

    Fed the same draws, the batch computes each seed's own losses and gradients to float
    tolerance, and so its own update. Gradients agree to ~1e-7 of their largest element; on a
    rare step a pre-activation within rounding of LeakyReLU's kink takes the other slope in one
    of the two (measured: up to 4e-4 once in 40 steps), so the bound per step is 1e-2 and the
    median over all steps must be at float level. Weights are compared to 2 lr, not to float tolerance:
    Adam's step is m / sqrt(v), so where a gradient is rounding noise (a dead unit) its sign,
    and a step of up to lr, is noise too. (For the same reason the comparison is made step by
    step: over many steps those elements drift apart.)"""
    extra = {"k": 5} if model == "iwae" else {}  # the IWAE with 5 samples per image
    cfg = make_config(model, n_train=64, batch_size=64, epochs=1, device="cpu", **extra)  # one step per call
    x, y = train.prepare(cfg, mnist_train, torch.device("cpu"))
    batch = train.init_state(cfg, torch.device("cpu"), [0, 1, 2])
    batch_grads = _record_gradients(batch)
    step = train.EPOCHS[model]
    worst, typical = 0.0, []
    for n in range(200):
        singles = [_detached_copy(batch, i) for i in range(3)]
        logs = step(batch, cfg, x, y, False)
        for i, one in enumerate(singles):
            one_grads = _record_gradients(one)
            one_logs = step(one, cfg, x, y, False)
            for k, v in one_logs.items():
                torch.testing.assert_close(logs[k][:, i], v[:, 0], rtol=1e-5, atol=1e-6, msg=f"step {n} seed {i} {k}")
            for k, grads in one_grads.items():
                for a, b in zip(grads, batch_grads[k]):
                    err = float((b[i:i + 1] - a).abs().max() / a.abs().max().clamp_min(1e-12))
                    assert err < 1e-2, f"step {n} seed {i} {k}: gradient differs by {err:.1e} of its largest element"
                    worst = max(worst, err)
                    typical.append(err)
            for k, m in one.models.items():
                mine = train.select_seed(batch.models[k], i)
                for a, b in zip(m.parameters(), mine.parameters()):
                    assert (a - b).abs().max() <= 2 * cfg.lr, f"step {n} seed {i} {k}"
    assert sorted(typical)[len(typical) // 2] < 1e-5, f"median gradient difference {sorted(typical)[len(typical) // 2]:.1e}"
    # three different models: each seed has its own initialisation and draws
    first = next(iter(batch.models.values())).state_dict()
    w = next(iter(first.values()))
    assert not torch.allclose(w[0], w[1]) and not torch.allclose(w[1], w[2])


def test_adding_seeds_trains_only_the_new_ones_and_each_seed_ignores_its_batch_mates(tmp_path, data_root):
    cfg = make_config("gan", **TINY)
    first = runs.get_runs(cfg, "t", [0, 1, 2], results_root=tmp_path, data_root=data_root)
    assert [r.cached for r in first] == [False] * 3 and [r.cfg.seed for r in first] == [0, 1, 2]
    more = runs.get_runs(cfg, "t", [0, 1, 2, 3, 4], results_root=tmp_path, data_root=data_root)
    assert [r.cached for r in more] == [True, True, True, False, False]
    assert json.loads((more[4].path / "manifest.json").read_text())["trained_with_seeds"] == [3, 4]
    alone = runs.get_run(make_config("gan", seed=4, **TINY), "t", results_root=tmp_path / "alone", data_root=data_root)
    assert alone.path.name == more[4].path.name  # one run id per (configuration, seed)
    for k in alone.models:
        for a, b in zip(alone.models[k].parameters(), more[4].models[k].parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("seeds, why", [([], "non-empty"), ([0, -1], "integers >= 0"), ([1, 1], "repeat"),
                                        ([0, 1.5], "integers >= 0"), ([True], "integers >= 0")])
def test_invalid_seeds_are_refused_before_any_work(tmp_path, seeds, why):
    from mnistgen.config import ConfigError

    with pytest.raises(ConfigError, match=why):
        runs.get_runs(make_config("gan", **TINY), "t", seeds, results_root=tmp_path, data_root=tmp_path / "no-data")
    assert not (tmp_path / "t").exists()


def test_a_diverging_seed_stops_alone_and_the_others_finish(tmp_path, data_root, monkeypatch):
    cfg = make_config("gan", **TINY)
    real_step = train.EPOCHS["gan"]
    calls = {"n": 0}

    def poisoned(st, cfg, x, y, log_steps):
        calls["n"] += 1
        if calls["n"] == 2:  # in the second epoch, seed 1's discriminator turns to NaN
            with torch.no_grad():
                for p in st.models["D"].parameters():
                    p[st.seeds.index(1)] = float("nan")
        return real_step(st, cfg, x, y, log_steps)

    monkeypatch.setitem(train.EPOCHS, "gan", poisoned)
    with pytest.raises(train.TrainingDiverged, match=r"gan seed 1: non-finite \w+ at epoch 2, step 1 of 4; "
                                                     r"the last good checkpoint is epoch 1\. Seeds \[0, 2\] finished"):
        runs.get_runs(cfg, "t", [0, 1, 2], results_root=tmp_path, data_root=data_root)
    monkeypatch.setitem(train.EPOCHS, "gan", real_step)
    done = runs.get_runs(cfg, "t", [0, 2], results_root=tmp_path, data_root=data_root)
    assert all(r.cached and r.state.epoch == 3 for r in done)
    bad = runs.results_dir("t", tmp_path) / "runs" / runs.run_id(make_config("gan", seed=1, **TINY))
    assert not (bad / "manifest.json").exists()
    payload = torch.load(bad / "checkpoint.pt", weights_only=True)
    assert payload["state"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in payload["state"]["models"]["D"].values())


def test_a_seed_computes_the_same_bits_whatever_seeds_share_its_batch(mnist_train):
    """Seed 0 beside seeds 1 and 2, or beside 7 and 8: the same weights, bit for bit."""
    cfg = make_config("acgan", n_train=256, batch_size=64, epochs=2, device="cpu")
    a = train.train(cfg, train.init_state(cfg, torch.device("cpu"), [0, 1, 2]), mnist_train, progress=False)
    b = train.train(cfg, train.init_state(cfg, torch.device("cpu"), [0, 7, 8]), mnist_train, progress=False)
    for k in a.models:
        for p, q in zip(a.models[k].parameters(), b.models[k].parameters()):
            assert torch.equal(p[0], q[0])
            assert not torch.equal(p[1], q[1])
    assert a.histories[0] == [{**r, "seconds": a.histories[0][j]["seconds"]} for j, r in enumerate(b.histories[0])]


def test_a_run_another_process_holds_is_reported_busy_when_asked_not_to_wait(tmp_path, data_root):
    cfg = make_config("gan", **TINY)
    path = runs.results_dir("t", tmp_path) / "runs" / runs.run_id(cfg)
    with runs.exclusive(path / ".lock", path.name):  # as if another process were training it
        script = textwrap.dedent(f"""
            from mnistgen import runs
            from mnistgen.config import make_config
            try:
                runs.get_runs(make_config("gan", **{TINY!r}), "t", results_root={str(tmp_path)!r},
                              data_root={str(data_root)!r}, wait=False)
            except runs.RunBusy as e:
                print("busy:", e)
        """)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("busy: another process is working on " + path.name), r.stderr
    assert not (path / "checkpoint.pt").exists()
