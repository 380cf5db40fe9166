"""The GPU training path (``graphs.DeviceEpoch``): whole-epoch draws, a device-side step counter,
steps captured as CUDA graphs.

On CPU the same object runs its steps eagerly, which checks the bookkeeping (which columns a step
reads, where its logs go) against the step-by-step loop fed the very same draws. Where CUDA is
present, a graphed epoch is compared with the eager epoch from the same state: the same draws
and the same kernels, so the same weights up to float rounding.
"""

from __future__ import annotations

import pytest
import torch

from mnistgen import train
from mnistgen.config import make_config
from mnistgen.graphs import DeviceEpoch

CASES = [("gan", {}, [0, 1]), ("gan", {"k": 2}, [0, 1, 2]), ("acgan", {}, [0, 1]), ("vae", {}, [0, 1]),
         ("iwae", {"k": 5, "epochs": 40}, [0, 1]), ("classifier", {"arch": "lenet"}, [0]),
         ("classifier", {"arch": "vgg"}, [0])]
IDS = ["gan", "gan-k2", "acgan", "vae", "iwae-k5", "lenet", "vgg"]


def _params(st: train.TrainState) -> dict[str, torch.Tensor]:
    return {f"{k}.{n}": p.detach().cpu() for k, m in st.models.items() for n, p in m.state_dict().items()}


@pytest.mark.parametrize(("model", "kw", "seeds"), CASES, ids=IDS)
def test_device_epoch_equals_the_step_loop_on_the_same_draws(mnist_train, model, kw, seeds):
    # 300 images in batches of 64: four full batches and a last one of 44, over 3 epochs
    # (the classifier's learning rate changes between them)
    cfg = make_config(model, n_train=300, batch_size=64, device="cpu", **{"epochs": 3, **kw})
    dev = torch.device("cpu")
    x, y = train.prepare(cfg, mnist_train, dev)
    fam = train.FAMILIES[model]
    ours, ref = train.init_state(cfg, dev, seeds), train.init_state(cfg, dev, seeds)
    runner = DeviceEpoch(ours, cfg, x, True, fam, graphs=False)
    for epoch in range(cfg.epochs):
        ours.epoch = ref.epoch = epoch
        fam.before_epoch and fam.before_epoch(ours, cfg)
        logs = runner.run(ours, cfg, x, y)
        fam.before_epoch and fam.before_epoch(ref, cfg)
        for i, cols in enumerate(torch.arange(len(x)).split(cfg.batch_size)):
            draws = {k: v[:, cols] for k, v in runner.draws.items()}
            values = fam.step(ref, cfg, x, y, runner.perm[:, cols], draws, train.g_step(cfg, i), True)
            for k, v in values.items():
                assert torch.equal(logs[k][i // runner.every[k]], v), (epoch, i, k)
    # the step loop fed the device path's draws ends with bitwise the same weights
    for name, p in _params(ref).items():
        assert torch.equal(p, _params(ours)[name]), name
    # and the draws were each seed's own: a seed's permutation is a permutation, seeds differ
    assert all(torch.equal(row.sort().values, torch.arange(len(x))) for row in runner.perm)
    if len(seeds) > 1:
        assert not torch.equal(runner.perm[0], runner.perm[1])


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA graphs); CI has none")


@cuda
@pytest.mark.parametrize(("model", "kw", "seeds"), CASES, ids=IDS)
def test_graphed_training_equals_eager_training_on_cuda(mnist_train, model, kw, seeds):
    # 2,000 images in batches of 64 (31 steps and a last batch of 16) for 5 epochs: every kind
    # of step is warmed up, captured and replayed, including the last batch (captured in epoch 4)
    # and, for the classifier, a new capture at each learning rate (epochs 1, 3, 5).
    cfg = make_config(model, n_train=2000, batch_size=64, device="cuda", **{"epochs": 5, **kw})
    dev = torch.device("cuda")
    eager = train.init_state(cfg, dev, seeds)
    eager.cuda_graphs = False
    graphed = train.init_state(cfg, dev, seeds)
    # cuDNN's default convolution algorithms may accumulate in a varying order: deterministic ones
    # here, so that the comparison measures the graphs, not cuDNN
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True,
                                    allow_tf32=torch.backends.cudnn.allow_tf32):
        eager = train.train(cfg, eager, mnist_train, progress=False, log_steps=True)
        graphed = train.train(cfg, graphed, mnist_train, progress=False, log_steps=True)
    assert graphed.device_epoch.graphs and not eager.device_epoch.graphs
    keys = graphed.device_epoch.graphs  # (batch size, G step, learning rates) of each captured step
    if model == "classifier":  # one capture per learning rate (the last batch never gets 3 warm-ups at one lr)
        assert len({lrs for _, _, lrs in keys}) == 3
    elif model == "iwae":  # a 40-epoch schedule visits Burda et al.'s stages 0, 4, 5, 6 and 7
        assert len({lrs for _, _, lrs in keys}) >= 3
    else:
        assert any(m == 16 for m, _, _ in keys)  # the last, smaller batch was captured too
    if kw.get("k") == 2:
        assert {g for _, g, _ in keys} == {False, True}  # D-only and D+G steps
    for name, p in _params(eager).items():
        torch.testing.assert_close(_params(graphed)[name], p, rtol=1e-4, atol=1e-5, msg=name)
    for h_eager, h_graphed in zip(eager.histories, graphed.histories):
        for r_e, r_g in zip(h_eager, h_graphed):
            for k, v in r_e["steps"].items():
                torch.testing.assert_close(torch.tensor(r_g["steps"][k]), torch.tensor(v), rtol=1e-4, atol=1e-5,
                                           msg=f"epoch {r_e['epoch']} {k}")


class _Stop(Exception):
    pass


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=cuda)])
def test_a_run_stopped_mid_batch_resumes_bitwise_through_its_checkpoint_files(device, tmp_path, data_root,
                                                                              monkeypatch):
    """Same seed, same device: a batch stopped after epoch 2 and resumed through the checkpoint
    files it wrote (on a GPU: loaded on the CPU first, then moved, as ``runs`` does) ends where an
    uninterrupted batch ends. The path of the reload bug that every GPU checkpoint once hit."""
    from mnistgen import runs

    cfg = make_config("acgan", n_train=1000, batch_size=64, epochs=4, device=device)
    full = runs.get_runs(cfg, "t", [0, 1], results_root=tmp_path / "full", data_root=data_root, progress=False)
    save = runs.save_checkpoint

    def save_then_stop(path, c, st, i=0):
        save(path, c, st, i)
        if st.epoch == 2 and i == st.n_seeds - 1:
            raise _Stop

    monkeypatch.setattr(runs, "save_checkpoint", save_then_stop)
    with pytest.raises(_Stop):
        runs.get_runs(cfg, "t", [0, 1], results_root=tmp_path / "stopped", data_root=data_root, progress=False)
    monkeypatch.setattr(runs, "save_checkpoint", save)
    said = []
    resumed = runs.get_runs(cfg, "t", [0, 1], results_root=tmp_path / "stopped", data_root=data_root,
                            progress=False, log=said.append)
    assert sum("from epoch 2 of 4" in line for line in said) == 2, said
    for a, b in zip(full, resumed):
        for k in a.models:
            for (name, p), q in zip(a.models[k].named_parameters(), b.models[k].parameters()):
                assert torch.equal(p, q), (a.cfg.seed, k, name)


def _train_on_own_stream(model: str, kw: dict, seeds: list[int], data) -> dict[str, torch.Tensor]:
    """A task as ``train all`` runs it on a GPU: its own CUDA stream, its own graphs."""
    cfg = make_config(model, n_train=2000, batch_size=64, device="cuda", **{"epochs": 4, **kw})
    with torch.cuda.stream(torch.cuda.Stream()):
        st = train.train(cfg, train.init_state(cfg, torch.device("cuda"), seeds), data, progress=False)
        out = _params(st)
    return out


@cuda
def test_trainings_sharing_the_gpu_from_threads_equal_trainings_alone(mnist_train):
    """``train all`` on a GPU runs its groups as threads of one Dask worker, each on its own stream
    and capturing its own graphs (thread-local capture mode) while the others run: the weights
    equal those of the same trainings run one after another."""
    from mnistgen import executor

    jobs = {name: (_train_on_own_stream, (m, kw, seeds, mnist_train)) for name, (m, kw, seeds) in zip(IDS, CASES)}
    # deterministic cuDNN for the classifiers (measured on an H100: without it the LeNet's weights
    # differed between two trainings, as cuDNN's default backward algorithms may)
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True,
                                    allow_tf32=torch.backends.cudnn.allow_tf32):
        with executor.cluster(jobs=len(jobs), threads=True) as client:
            together = executor.run(client, jobs, "threads", progress=False)
        for name, (fn, args) in jobs.items():
            alone = fn(*args)
            for k, p in alone.items():
                assert torch.equal(together[name][k], p), (name, k)
