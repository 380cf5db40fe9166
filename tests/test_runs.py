"""Training loops, run cache, determinism, resume after SIGKILL, refusal of bad checkpoints."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from mnistgen import runs, train
from mnistgen.config import ConfigError, make_config

TINY = dict(n_train=256, batch_size=64, epochs=3, device="cpu")

# Bounds of the seed-batch oracle, from float64 arithmetic (unit roundoff u = 2^-53 ~ 1.1e-16), not
# from the largest difference one machine showed. The batch and the single seed add the same
# products in different orders (baddbmm vs addmm, other kernels and blockings). Each gradient
# element passes through at most ~10 reductions of at most 784 x 5 terms, so two orders differ by
# at most ~10 * 3920 * u ~ 4e-12 of the terms' magnitude; 1e-9 of the tensor's largest element
# leaves a factor of ~250 for cancellation. A branch can flip only where a pre-activation lies
# within that rounding (~1e-12) of a ReLU/LeakyReLU kink: over the ~1e7 pre-activations of a
# run, a chance of order 1e-5 on any CPU. (In float32 the same bound is ~2e-3, and kinks were crossed:
# a 4e-4 gradient difference on one CPU, 2.9e-2 on an AVX2 EPYC.)
ORACLE_GRAD_RTOL = 1e-9
ORACLE_LOG_RTOL = 1e-9


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
        # every tensor, the AC-GAN generator's label embedding too: two batches of 64 sampled
        # labels reach all ten of its rows (a disconnected label input would leave it still)
        changed = [not torch.equal(a, b) for a, b in zip(before[k], m.parameters())]
        assert all(changed), f"{model}.{k}: parameters {[i for i, c in enumerate(changed) if not c]} did not move"
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
    where, epoch, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])  # seeds are 0, 1, 2: index = seed

    def die():
        os.kill(os.getpid(), signal.SIGKILL)   # no cleanup, no atexit: as a crash or OOM kill

    save, write, finish = runs.save_checkpoint, runs.write_checkpoint, runs._finish
    def save_then_maybe_die(path, cfg, st, i=0):
        save(path, cfg, st, i)
        if where == "after-save" and st.epoch == epoch and st.seeds[i] == seed:
            die()
    def maybe_die_then_write(path, payload):  # inside a save: the old checkpoint already moved aside
        if where == "mid-save" and payload["state"]["epoch"] == epoch and payload["identity"]["seed"] == seed:
            die()
        write(path, payload)
    def finish_then_maybe_die(path, cfg, *a):
        out = finish(path, cfg, *a)
        if where == "after-finish" and cfg.seed == seed:
            die()
        return out
    runs.save_checkpoint, runs.write_checkpoint, runs._finish = save_then_maybe_die, maybe_die_then_write, finish_then_maybe_die
    cfg = make_config("acgan", n_train=256, batch_size=64, epochs=4, device="cpu")
    runs.get_runs(cfg, "t", [0, 1, 2], results_root=sys.argv[1], data_root=sys.argv[5], progress=False)
""")
KILL_CFG = dict(n_train=256, batch_size=64, epochs=4, device="cpu")


@pytest.fixture(scope="module")
def uninterrupted_batch(tmp_path_factory, data_root):
    cfg = make_config("acgan", **KILL_CFG)
    return runs.get_runs(cfg, "t", [0, 1, 2], results_root=tmp_path_factory.mktemp("clean"), data_root=data_root)


@pytest.mark.parametrize("where, epoch, seed, resumed_from", [
    # (a kill after every seed's save of an epoch: tests/test_executor.py, through Dask)
    ("after-save", 1, 0, []),          # between two seeds' saves of epoch 1: all three start afresh
    ("mid-save", 3, 1, [2, 2, 2]),     # seed 1's epoch 2 moved aside, epoch 3 not yet written: seed 0,
                                       # saved at epoch 3, steps back to its previous checkpoint
    ("after-finish", 4, 0, [4, 4]),    # seed 0 finished (manifest written), seeds 1 and 2 not yet
])
def test_sigkill_anywhere_then_rerun_resumes_and_matches_an_uninterrupted_batch(
        tmp_path, data_root, uninterrupted_batch, where, epoch, seed, resumed_from):
    """Three seeds trained as one batch, killed at a point of saving: the rerun ends bitwise equal to
    a batch that was never killed (seeds one epoch ahead step back, so the batch resumes whole)."""
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    args = [sys.executable, str(script), str(tmp_path / "r")]
    killed = subprocess.run([*args, where, str(epoch), str(seed), str(data_root)], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    run_dirs = sorted((tmp_path / "r" / "t" / "runs").iterdir())
    assert len(run_dirs) == 3
    said = []
    done = runs.get_runs(make_config("acgan", **KILL_CFG), "t", [0, 1, 2], results_root=tmp_path / "r",
                         data_root=data_root, log=said.append, progress=False)
    assert sorted(int(e) for e in re.findall(r"from epoch (\d+) of 4", "\n".join(said))) == resumed_from, said
    for d, c in zip(done, uninterrupted_batch):
        assert d.state.epoch == 4
        assert_identical(_state(d), _state(c))
        assert [r["d_loss"] for r in d.history] == [r["d_loss"] for r in c.history]
        assert json.loads((d.path / "manifest.json").read_text())["trained_with_seeds"] == \
            ([0, 1, 2] if where != "after-finish" or d.cfg.seed == 0 else [1, 2])
        assert not list(d.path.glob(".*tmp")) and not (d.path / "checkpoint.prev.pt").exists()


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


def _record_offset(blob: bytes, suffix: str) -> tuple[int, int]:
    """Where the data of the zip record whose name ends in ``suffix`` starts, and its size."""
    import io
    import struct
    import zipfile

    head = len(runs.CHECKPOINT_MAGIC) + 32
    with zipfile.ZipFile(io.BytesIO(blob[head:])) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    local = head + info.header_offset
    name_len, extra_len = struct.unpack("<HH", blob[local + 26:local + 30])
    return local + 30 + name_len + extra_len, info.file_size


@pytest.mark.parametrize("damage", ["tensor", "pickle", "digest"])
def test_a_damaged_checkpoint_is_refused_and_left_alone(tmp_path, data_root, damage):
    """One flipped byte anywhere (in a tensor's bytes, in the pickle, in the digest) is refused by
    name (a cut file: ``test_truncated_checkpoint_is_refused_and_left_alone``), and nothing is overwritten. A flipped tensor byte is what torch.load alone
    accepts: 5000.0 would read 5000.0005 (shown below), so the file carries a SHA-256 of its bytes."""
    import io

    cfg = make_config("gan", **TINY)
    ckpt = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root).path / "checkpoint.pt"
    blob = bytearray(ckpt.read_bytes())
    at = {"digest": len(runs.CHECKPOINT_MAGIC) + 5}.get(damage)
    if at is None:
        start, size = _record_offset(bytes(blob), "data/0" if damage == "tensor" else "data.pkl")
        at = start + size // 2
    blob[at] ^= 0x10
    ckpt.write_bytes(bytes(blob))
    if damage == "tensor":  # the defect the digest guards: the bytes still load, as other numbers
        body = bytes(blob[len(runs.CHECKPOINT_MAGIC) + 32:])
        torch.load(io.BytesIO(body), weights_only=True)
    with pytest.raises(runs.CheckpointError, match=r"checkpoint .*checkpoint\.pt is corrupt or truncated.*retrain"):
        runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    assert ckpt.read_bytes() == bytes(blob)  # nothing overwritten


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
    payload = runs.read_checkpoint(ckpt)
    payload["state"]["noise_rng"] = torch.zeros(16, dtype=torch.uint8)  # as torch.Generator("cuda").get_state()
    runs.write_checkpoint(ckpt, payload)
    again = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    assert again.cached
    assert_identical(_state(again), {f"{k}.{n}": v for k, m in payload["state"]["models"].items() for n, v in m.items()})
    payload["state"]["epoch"] = 2  # the same run, unfinished
    runs.write_checkpoint(ckpt, payload)
    (run.path / "manifest.json").unlink()
    with pytest.raises(runs.CheckpointError, match="unfinished run started on another kind of device.*resume it where"):
        runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)


def test_checkpoint_of_another_architecture_is_refused(tmp_path, data_root):
    cfg = make_config("gan", **TINY)
    run = runs.get_run(cfg, "t", results_root=tmp_path, data_root=data_root)
    payload = runs.read_checkpoint(run.path / "checkpoint.pt")
    payload["state"]["models"]["G"]["net.0.0.weight"] = torch.zeros(3, 3)
    runs.write_checkpoint(run.path / "checkpoint.pt", payload)
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

    import hashlib

    body = pickle.dumps({"format": 1, "x": Evil()})
    path = tmp_path / "checkpoint.pt"
    cfg = make_config("gan", **TINY)
    path.write_bytes(body)  # a bare pickle: no header, refused before anything is read
    with pytest.raises(runs.CheckpointError, match="is not a mnistgen checkpoint of format"):
        runs.load_checkpoint(path, cfg, train.init_state(cfg, torch.device("cpu")))
    # behind a valid header and digest (as someone who knows the format could write): torch.load's
    # weights_only unpickler refuses the call to os.system
    path.write_bytes(runs.CHECKPOINT_MAGIC + hashlib.sha256(body).digest() + body)
    with pytest.raises(runs.CheckpointError, match="corrupt or truncated.*UnpicklingError"):
        runs.load_checkpoint(path, cfg, train.init_state(cfg, torch.device("cpu")))
    assert not (tmp_path / "pwned").exists()


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path, data_root, monkeypatch):
    cfg = make_config("gan", **TINY)
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
    payload = runs.read_checkpoint(run_dir / "checkpoint.pt")
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
def test_one_d_pass_over_real_and_fake_gives_the_two_pass_gradients(model, mnist_train, float64):
    """Oracle: the textbook step (D on the real batch, then on the fake batch) with the same RNG.

    In float64, so that rounding cannot move a pre-activation across LeakyReLU's kink: the two
    computations add the same terms in other orders (one matrix product over 2b rows against two
    over b), which differ by ~1e-13 of the terms; rtol 1e-9 leaves a wide margin (see
    ``ORACLE_GRAD_RTOL``)."""
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
        torch.testing.assert_close(a, b.grad, rtol=ORACLE_GRAD_RTOL, atol=ORACLE_GRAD_RTOL * float(a.abs().max()))
    ref.optimizers["D"].step()
    loss_g = losses.acgan_g_loss(*D(fake), c) if model == "acgan" else losses.g_loss(D(fake))
    ref.optimizers["G"].zero_grad()
    loss_g.backward()
    for a, b in zip(grads["G"], G.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=ORACLE_GRAD_RTOL, atol=ORACLE_GRAD_RTOL * float(a.abs().max()))


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


def _adam_update_bound(lr: float, eps: float, dg: float, step: float, w: float) -> float:
    """How far two Adam updates from one state may differ when their gradients differ by ``dg``.

    Adam moves a weight by lr * f(g) with f(g) = m̂ / (sqrt(v̂) + eps), m̂ and v̂ affine in g and g^2
    with slopes <= 1, so |f'(g)| <= (1 + |f|) / eps (derivation in the test's docstring); |f| is
    the step itself over lr (``step``: the largest one taken). Twice that over the segment between
    the two gradients, plus rounding of the update (4 u of the weight and the step).
    """
    u = 2.0 ** -53
    return 2 * lr * (1 + step / lr) * dg / eps + 4 * u * (w + step)


def _seed_batch_oracle(model: str, data, steps: int, beta1s: tuple[float, ...] = ()) -> float:
    """Run the oracle for ``steps`` steps in float64; return the worst relative gradient difference.

    The batch holds seeds 0, 1, 2 of one configuration or, with ``beta1s`` (GANs), seeds 0, 1, 2
    of each beta1 as one batch of members. Raises AssertionError (naming step, member and tensor)
    where the batch's update of a member is not that member's own update trained alone (with its
    own betas) within the float64 bounds above.
    """
    extra = {"k": 5} if model == "iwae" else {}  # the IWAE with 5 samples per image
    cfg = make_config(model, n_train=64, batch_size=64, epochs=1, device="cpu", **extra)  # one step per call
    x, y = train.prepare(cfg, data, torch.device("cpu"))
    x = x.double()
    members = [dataclasses.replace(cfg, seed=s, **({"beta1": b} if beta1s else {}))
               for b in (beta1s or (None,)) for s in (0, 1, 2)]
    batch = train.init_members(members, torch.device("cpu"))
    batch_grads = _record_gradients(batch)
    step = train.EPOCHS[model]
    worst = 0.0
    for n in range(steps):
        singles = [_detached_copy(batch, i) for i in range(len(members))]
        logs = step(batch, cfg, x, y, False)
        for i, one in enumerate(singles):
            before = {k: [p.detach().clone() for p in m.parameters()] for k, m in one.models.items()}
            one_grads = _record_gradients(one)
            one_logs = step(one, cfg, x, y, False)
            for k, v in one_logs.items():
                torch.testing.assert_close(logs[k][:, i], v[:, 0], rtol=ORACLE_LOG_RTOL, atol=ORACLE_LOG_RTOL,
                                           msg=f"step {n} {batch.describe(i)} {k}")
            for k, grads in one_grads.items():
                opt = one.optimizers[k].param_groups[0]
                mine = train.select_seed(batch.models[k], i)
                for j, (a, b, w0, after, p) in enumerate(zip(grads, batch_grads[k], before[k],
                                                             one.models[k].parameters(), mine.parameters())):
                    dg = float((b[i:i + 1] - a).abs().max())
                    err = dg / max(float(a.abs().max()), 1e-300)
                    assert err < ORACLE_GRAD_RTOL, \
                        f"step {n} {batch.describe(i)} {k} tensor {j}: gradient differs by {err:.1e} of its largest element"
                    worst = max(worst, err)
                    bound = _adam_update_bound(opt["lr"], opt["eps"], dg, float((after.detach() - w0).abs().max()),
                                               float(w0.abs().max()))
                    dw = float((after.detach() - p.detach()).abs().max())
                    assert dw <= bound, f"step {n} {batch.describe(i)} {k} tensor {j}: weights differ by {dw:.1e} > {bound:.1e}"
    # three different models: each seed has its own initialisation and draws
    first = next(iter(batch.models.values())).state_dict()
    w = next(iter(first.values()))
    assert not torch.allclose(w[0], w[1]) and not torch.allclose(w[1], w[2])
    return worst


@pytest.mark.parametrize("model", ["gan", "acgan", "vae", "iwae"])
def test_a_batch_of_seeds_gives_each_seeds_own_single_seed_updates(model, mnist_train, float64):
    """Oracle: 60 steps of seeds {0, 1, 2} trained together; before every step each seed is
    copied out and stepped alone from the same weights, optimiser moments and generators.

    Fed the same draws, the batch must compute each seed's own losses, gradients and Adam update.
    The comparison runs in float64 so that its bounds hold by construction on any CPU
    (``ORACLE_GRAD_RTOL``): the two computations differ only in rounding, and in float64 rounding
    cannot move a pre-activation across a kink except with negligible probability. Weights are
    compared step by step with the bound Adam's arithmetic gives (``_adam_update_bound``): for
    f(g) = m̂ / (sqrt(v̂) + eps), m̂ = (b1 m + (1 - b1) g) / (1 - b1^t) has slope a <= 1 in g and
    sqrt(v̂) has slope of size <= sqrt((1 - b2) / (1 - b2^t)) <= 1, so
    |f'| <= a / D + |m̂| / D^2 <= (1 + |f|) / eps with D = sqrt(v̂) + eps >= eps.
    """
    worst = _seed_batch_oracle(model, mnist_train, 60)
    assert worst < ORACLE_GRAD_RTOL


@pytest.mark.parametrize("model", ["gan", "acgan"])
def test_a_batch_of_members_with_their_own_beta1_gives_each_its_own_updates(model, mnist_train, float64):
    """The same oracle for the sweep's batches: seeds 0-2 at beta1 = 0.5 and at 0.9 as one batch of
    six members; each must equal itself trained alone with its own beta1 (same float64 bounds).
    Members with one seed start from the same weights and draws, so only beta1 tells them apart."""
    worst = _seed_batch_oracle(model, mnist_train, 30, beta1s=(0.5, 0.9))
    assert worst < ORACLE_GRAD_RTOL


def test_the_member_oracle_catches_a_batch_that_mixes_up_beta1(mnist_train, float64, monkeypatch):
    """A batch whose optimiser gives every member the first member's beta1 fails the oracle at the
    second step, at the first member with the other beta1 (Adam's first step is g / |g| whatever
    beta1, after bias correction; at the second, D's update already differs, and with it G's loss)."""
    from mnistgen import optim

    init = optim.MemberAdam.__init__

    def first_betas_for_all(self, params, betas, *a, **kw):
        init(self, params, [betas[0]] * len(betas), *a, **kw)

    monkeypatch.setattr(optim.MemberAdam, "__init__", first_betas_for_all)
    with pytest.raises(AssertionError, match=r"^step 1 seed 0 beta1=0.9 "):
        _seed_batch_oracle("gan", mnist_train, 3, beta1s=(0.5, 0.9))


def test_members_that_differ_in_more_than_the_member_fields_are_refused(tmp_path):
    cfg = make_config("gan", **TINY)
    with pytest.raises(ConfigError, match="may differ only in seed, beta1, beta2; gan seed 0 differs from the "
                                          "first member in batch_size"):
        runs.get_member_runs([cfg, dataclasses.replace(cfg, batch_size=128)], "t", results_root=tmp_path)
    with pytest.raises(ConfigError, match="each run once"):
        runs.get_member_runs([cfg, cfg], "t", results_root=tmp_path)


def test_the_seed_batch_oracle_catches_a_seed_that_leaks_into_another(mnist_train, float64, monkeypatch):
    """The oracle's strength: a batch whose seeds mix by one part in a million fails it."""
    from mnistgen.models import seeded

    forward = seeded.SeedLinear.forward

    def leaky(self, x):
        out = forward(self, x)
        if self.weight.shape[0] > 1:  # slice s also sees 1e-6 of slice s - 1's output
            out = out + 1e-6 * out.roll(1, dims=0)
        return out

    monkeypatch.setattr(seeded.SeedLinear, "forward", leaky)
    for model in ("gan", "vae"):
        with pytest.raises(AssertionError, match="step 0 seed 0"):
            _seed_batch_oracle(model, mnist_train, 2)


def test_adding_seeds_trains_only_the_new_ones_and_each_seed_ignores_its_batch_mates(tmp_path, data_root, float64):
    cfg = make_config("gan", **TINY)
    first = runs.get_runs(cfg, "t", [0, 1, 2], results_root=tmp_path, data_root=data_root)
    assert [r.cached for r in first] == [False] * 3 and [r.cfg.seed for r in first] == [0, 1, 2]
    more = runs.get_runs(cfg, "t", [0, 1, 2, 3, 4], results_root=tmp_path, data_root=data_root)
    assert [r.cached for r in more] == [True, True, True, False, False]
    assert json.loads((more[4].path / "manifest.json").read_text())["trained_with_seeds"] == [3, 4]
    alone = runs.get_run(make_config("gan", seed=4, **TINY), "t", results_root=tmp_path / "alone", data_root=data_root)
    assert alone.path.name == more[4].path.name  # one run id per (configuration, seed)
    # Alone (addmm) and beside seed 3 (baddbmm) the seed's 12 steps add the same terms in other
    # orders: in float64 (``float64``) no rounding crosses a kink, and the weights agree to
    # ~1e-15 (measured here and across `make test-matrix`); 1e-10 bounds float64's rounding
    # through 12 Adam steps with a wide margin (each step: ``_adam_update_bound``).
    for k in alone.models:
        for a, b in zip(alone.models[k].parameters(), more[4].models[k].parameters()):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


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
    payload = runs.read_checkpoint(bad / "checkpoint.pt")
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
