"""One edition of the report (a profile): every run its chapters read, every number they cite, and
the weights its figures draw with.

``mnistgen train all --profile P`` makes an edition without rendering it (a GPU machine has no
notebook stack): :func:`train_profile` trains every group of runs, resumable and within a time
limit, then :func:`measure` computes every cached metric the chapters read, through the very
functions the chapters call (so the cache keys are theirs). ``bundle.py`` ships the result; a
machine that installs it renders the edition without training or measuring anything heavy.

A group is one batch of runs trained together: one configuration with all its seeds, or (the GAN
sweep) every beta1 of one batch size with all their seeds, which differ only in Adam's betas
(``state.MEMBER_FIELDS``) and so share every step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from . import evaluate
from .config import ConfigError, EvalConfig, TrainConfig, load_profile, make_config
from .runs import RESULTS_ROOT, NotInBundle, Run, get_member_runs, results_dir, run_id
from .transfer import install_runs, pack_runs
from .train import TimeLimitReached

# The objective chapter's short runs (its ``epochs`` and ``strong_k`` parameters; tests/test_bundle.py
# checks that the notebook's defaults are these): both generator losses in the paper's regime
# (k = 1) and with the discriminator kept ahead (k = OBJECTIVE_STRONG_K), every step logged, no
# quality checks during training (the chapter scores the final samples).
OBJECTIVE_EPOCHS = 2
OBJECTIVE_STRONG_K = 5
OBJECTIVE = {"epochs": OBJECTIVE_EPOCHS, "quality_every": 0, "log_steps": True}


# A group's keys that say how it trains or ships rather than configure its runs: ``beta1s`` (one
# member per beta1), ``log_steps`` (every step's values kept), ``ship_first`` (only the first
# seed's weights ship: the numbers are cached metrics computed at export).
GROUP_KEYS = ("model", "log_steps", "beta1s", "ship_first")


def profile_groups(profile: str, ev: EvalConfig) -> dict[str, dict[str, Any]]:
    """Every group of runs (trained as one batch) the book of ``profile`` reads, by name: the
    keyword overrides of its configuration (``beta1s``: one member per beta1 and seed;
    ``log_steps``: every step's values are kept).
    A profile trains the model families its file names (``burda.yml`` names only the IWAE rows)."""
    named = set(load_profile(profile))
    groups: dict[str, dict[str, Any]] = {}
    if "classifier" in named or "gan" in named:  # the GANs' judge during training is the first yardstick
        groups.update({f"classifier arch={a}": {"model": "classifier", "arch": a} for a in ev.yardsticks})
    if "gan" in named:
        sweep = make_config("gan_sweep", profile)
        for batch_size in sweep.batch_sizes:  # every beta1 of one batch size in one batch: wider products
            groups[f"gan batch_size={batch_size}"] = {"model": "gan", "batch_size": batch_size,
                                                      "beta1s": tuple(sweep.beta1s)}
        for k in (1, OBJECTIVE_STRONG_K):  # the objective chapter's runs
            for saturating in (False, True):
                groups[f"gan objective saturating={saturating} k={k}"] = {"model": "gan", "saturating": saturating,
                                                                          "k": k, **OBJECTIVE}
    if "acgan" in named:
        groups["acgan"] = {"model": "acgan"}
    groups.update(followup_groups(profile))
    if "vae" in named:
        groups["vae"] = {"model": "vae"}
        groups["vae z_dim=2"] = {"model": "vae", "z_dim": 2}
    if "iwae" in named:
        table = make_config("iwae_table", profile)
        for objective, ks in (("iwae", table.iwae_ks), ("vae", table.vae_ks)):
            for k in ks:
                groups[f"iwae objective={objective} k={k}"] = {"model": "iwae", "objective": objective, "k": k}
    return groups


def followup_groups(profile: str) -> dict[str, dict[str, Any]]:
    """The groups of the profile's ``followup`` section (``config.FollowupConfig``), by name: what
    the first edition left open. Each is configuration only, so an edition shipped before them
    stays valid for every other group; until its part is in, a chapter says the group is pending
    (``evaluate.optional_runs``)."""
    named = set(load_profile(profile))
    if "followup" not in named:
        return {}
    f = make_config("followup", profile)
    groups: dict[str, dict[str, Any]] = {}
    if "gan" in named and f.long_epochs is not None:
        groups[f"gan beta1={f.long_beta1} batch_size={f.long_batch_size} epochs={f.long_epochs}"] = {
            "model": "gan", "beta1": f.long_beta1, "batch_size": f.long_batch_size, "epochs": f.long_epochs}
    if "gan" in named and f.objective_epochs is not None:
        for k in (1, OBJECTIVE_STRONG_K):
            for saturating in (False, True):
                groups[f"gan objective saturating={saturating} k={k} epochs={f.objective_epochs}"] = {
                    "model": "gan", "saturating": saturating, "k": k, "epochs": f.objective_epochs,
                    "ship_first": True}
    if "acgan" in named and f.acgan_beta1 is not None:
        groups[f"acgan beta1={f.acgan_beta1}"] = {"model": "acgan", "beta1": f.acgan_beta1}
    return groups


def group_members(profile: str, group: dict[str, Any], ev: EvalConfig) -> list[TrainConfig]:
    """The runs of one group, in the order they train and ship: per beta1 (if the group names
    several), every seed."""
    overrides = {k: v for k, v in group.items() if k not in GROUP_KEYS}
    cfg = make_config(group["model"], profile, **{**overrides, "device": ev.device})
    if group["model"] == "classifier":
        return [cfg]
    seeds = make_config("iwae_table", profile).seeds if group["model"] == "iwae" else ev.seeds
    settings = [{"beta1": b} for b in group["beta1s"]] if "beta1s" in group else [{}]
    return [dataclasses.replace(cfg, seed=s, **setting) for setting in settings for s in seeds]


def run_ids(profile: str) -> dict[str, list[str]]:
    """Every run id of the edition, by group, computed from the configurations and this code alone
    (nothing is trained or read): what a bundle must hold to be this code's edition."""
    ev = make_config("evaluation", profile)
    groups = profile_groups(profile, ev)
    ids = {name: _group_ids(profile, group_members(profile, group, ev), ev) for name, group in groups.items()}
    owner: dict[str, str] = {}
    for name, rs in ids.items():  # two groups with one run (the same settings twice) would ship it twice
        for rid in rs:
            if rid in owner:
                raise ConfigError(f"profile {profile!r}: groups {owner[rid]!r} and {name!r} both hold run {rid} (the "
                                  f"same settings); change one in profiles/{profile}.yml")
            owner[rid] = name
    return ids


def held_groups(profile: str, runs: dict[str, list[str]]) -> list[str] | None:
    """Whether ``runs`` (an edition's run ids by group, as a bundle records them) is an edition of
    this code: every group of the profile with exactly this code's run ids, except follow-up
    groups (``followup_groups``) not shipped yet. Returns those pending groups, or None where it is
    not this code's edition (a group missing or unknown, or a run id that differs)."""
    ours = run_ids(profile)
    pending = [name for name in ours if name not in runs]
    if set(runs) - set(ours) or any(runs[name] != ours[name] for name in runs) \
            or set(pending) - set(followup_groups(profile)):
        return None
    return pending


def group_runs(profile: str, name: str, device: str | None = None) -> list[Run] | None:
    """The finished runs of group ``name``, as ``train all`` trains them (trained here now where the
    profile renders without a bundle); None where the profile renders an installed bundle that does
    not hold the group yet (a follow-up group still pending): the chapter then says so."""
    ev = make_config("evaluation", profile, device=device)
    group = profile_groups(profile, ev)[name]
    cfgs = group_members(profile, group, ev)
    judge = (evaluate.classifier_run(profile, ev.yardsticks[0], ev.device)
             if getattr(cfgs[0], "quality_every", 0) else None)
    try:
        return get_member_runs(cfgs, profile, judge=judge, log_steps=group.get("log_steps", False))
    except NotInBundle:
        return None


def pending_text(profile: str, *names: str) -> str:
    """What a page says where follow-up groups are not in the edition yet."""
    which = f"group `{names[0]}`" if len(names) == 1 else f"{len(names)} groups: " + ", ".join(f"`{n}`" for n in names)
    return (f"The runs of this section ({which}) are not in this edition yet: they are trained a group at a "
            f"time and shipped as parts (`mnistgen edition status --profile {profile}` lists where each stands). "
            "The next edition shows them here.")


def finished(profile: str, name: str, results_root: Path = RESULTS_ROOT) -> bool:
    """Whether every run of group ``name`` is finished (has its manifest) in the results folder."""
    root = results_dir(profile, results_root) / "runs"
    return all((root / rid / "manifest.json").is_file() for rid in run_ids(profile)[name])


def train_group(profile: str, group: dict[str, Any], progress: bool = False, deadline: float | None = None,
                home: str | None = None, after: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train (or reuse, or resume) one group of ``profile_groups``: ``{"done": [summary per run]}``,
    or ``{"stopped": why}`` where the deadline came first (checkpointed: the next call resumes);
    with ``worker`` (host, process) and ``results`` (where this process keeps runs).

    A Dask task: it takes and returns plain values, and resolves the judge itself (cached).
    ``home``: the name of a marker file the client left in its results folder. Where this process
    does not see it, the two share no disk: the finished runs go back in the result (``runs``,
    ``transfer.pack_runs``), and runs that earlier tasks sent along (``after``: the judge) are
    installed here first, so this worker does not train the judge again."""
    ev = make_config("evaluation", profile)
    root = results_dir(profile, RESULTS_ROOT)
    away = home is not None and not (RESULTS_ROOT / home).is_file()
    out: dict[str, Any] = {"worker": f"{platform.node()} pid {os.getpid()}", "results": str(RESULTS_ROOT)}
    for earlier in after or []:
        if away and earlier.get("runs"):
            install_runs(earlier["runs"], root, f"runs from {earlier['worker']}")
    if deadline is not None and time.time() >= deadline:
        return {**out, "stopped": "not started before the time limit"}
    try:
        with _own_cuda_stream():
            out["done"] = _train_group(profile, group, ev, progress, deadline)
    except TimeLimitReached as e:
        return {**out, "stopped": str(e)}
    if away:
        out["runs"] = pack_runs(root, _group_ids(profile, group_members(profile, group, ev), ev))
    return out


def _group_ids(profile: str, cfgs: list[TrainConfig], ev: EvalConfig) -> list[str]:
    judge = (run_id(make_config("classifier", profile, arch=ev.yardsticks[0]))
             if getattr(cfgs[0], "quality_every", 0) else None)
    return [run_id(c, judge) for c in cfgs]


@contextlib.contextmanager
def _own_cuda_stream() -> Iterator[None]:
    """On a GPU, a task's kernels go to a stream of its own: tasks running as threads of one
    process (``train_profile`` on a GPU) then overlap on the device instead of queueing."""
    if not torch.cuda.is_available():
        yield
        return
    with torch.cuda.stream(torch.cuda.Stream()):
        yield


def _train_group(profile: str, group: dict[str, Any], ev: EvalConfig, progress: bool,
                 deadline: float | None) -> list[str]:
    cfgs = group_members(profile, group, ev)
    if group["model"] == "classifier":
        return [evaluate.classifier_run(profile, cfgs[0].arch, ev.device, progress=progress,
                                        deadline=deadline).summary()]
    judge = (evaluate.classifier_run(profile, ev.yardsticks[0], ev.device, deadline=deadline)
             if getattr(cfgs[0], "quality_every", 0) else None)
    return [r.summary() for r in get_member_runs(cfgs, profile, judge=judge, progress=progress,
                                                 log_steps=group.get("log_steps", False), deadline=deadline)]


def select_groups(profile: str, names: list[str] | None) -> dict[str, dict[str, Any]]:
    """The groups called ``names`` (all where None), with the first yardstick where a GAN-family
    group among them is judged by it during training; ValueError names an unknown group and lists
    the profile's."""
    ev = make_config("evaluation", profile)
    groups = profile_groups(profile, ev)
    if names is None:
        return groups
    unknown = [n for n in names if n not in groups]
    if unknown:
        raise ValueError(f"profile {profile!r} has no group {', '.join(map(repr, unknown))}; its groups: "
                         + "; ".join(groups))
    judge = f"classifier arch={ev.yardsticks[0]}"
    needs_judge = any(groups[n]["model"] in ("gan", "acgan") and groups[n].get("quality_every", 1) for n in names)
    keep = set(names) | ({judge} if needs_judge and judge in groups else set())
    return {n: g for n, g in groups.items() if n in keep}


def train_profile(profile: str, jobs: int | None = None, scheduler: str | None = None, progress: bool = True,
                  deadline: float | None = None, results_root: Path = RESULTS_ROOT,
                  copy_back: bool = True, only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every run the book of ``profile`` reads, trained as tasks of a Dask cluster (``executor``),
    without rendering: for a GPU machine or a cluster. A machine with the book's toolchain then
    renders from ``results/`` without retraining (run ids ignore the device). The GAN-family
    groups start once the first yardstick (their judge during training) is trained.

    Local work: on a GPU every group is a thread of one worker (``jobs`` at a time, default all),
    sharing the device through streams; on CPU, ``jobs`` (default 2) single-process workers.
    ``deadline``: see :func:`train_group`.

    Workers that share no disk with this process (``results_root``) send their runs back, which
    are verified and installed here (``copy_back=False`` leaves them where they were trained).
    Then every run asked for is checked here: one missing fails the command with its id, the
    worker that trained it and where that worker wrote it (ClusterError). ``only``: these groups
    (``select_groups``), not the whole edition."""
    from . import executor

    ev = make_config("evaluation", profile)
    groups = select_groups(profile, only)
    judge = f"classifier arch={ev.yardsticks[0]}"
    root = results_dir(profile, results_root)
    root.mkdir(parents=True, exist_ok=True)
    home = f".home-{uuid.uuid4().hex}"  # a worker that sees this file in its results folder shares ours
    (Path(results_root) / home).touch()
    try:
        results = _train_groups(profile, groups, judge, jobs, scheduler, progress, deadline,
                                home if copy_back else None, ev)
    finally:
        (Path(results_root) / home).unlink(missing_ok=True)
    ids = run_ids(profile)
    for name, r in results.items():
        if r.get("runs"):
            install_runs(r["runs"], root, f"runs of {name!r} from {r['worker']}")
    missing = [f"{rid} (group {name!r}, trained by {r['worker']} into {r['results']})"
               for name, r in results.items() if "done" in r
               for rid in ids[name] if not (root / "runs" / rid / "manifest.json").is_file()]
    if missing:
        raise executor.ClusterError(f"{len(missing)} run(s) the workers reported trained are not in this "
                                    f"machine's results folder {results_root}: " + "; ".join(missing)
                                    + ". The workers write to their own MNISTGEN_RESULTS; without a shared "
                                    "disk the runs come back with their tasks (copy-back)")
    return results


def _train_groups(profile: str, groups: dict[str, dict[str, Any]], judge: str, jobs: int | None,
                  scheduler: str | None, progress: bool, deadline: float | None, home: str | None,
                  ev: EvalConfig) -> dict[str, dict[str, Any]]:
    from . import executor

    tasks = {name: (train_group, (profile, group, False, deadline, home)) for name, group in groups.items()}
    depends = {name: judge for name, group in groups.items()
               if group["model"] in ("gan", "acgan") and group.get("quality_every", 1)}
    gpu = (ev.device != "cpu" and torch.cuda.is_available()
           and not (scheduler or os.environ.get(executor.SCHEDULER_ENV)))
    # on CPU two single-thread workers, unless only one group trains beside the judge (which the
    # others wait for): then one worker with every core, so that group does not train on one
    jobs = jobs or (len(tasks) if gpu else min(2, max(1, len(tasks) - (judge in tasks and len(tasks) > 1))))
    with executor.cluster(jobs, scheduler, threads=gpu) as client:
        return executor.run(client, tasks, f"{profile}: groups of runs", progress, depends)


def metric_steps(profile: str) -> list[tuple[str, Callable[[], Any]]]:
    """Every metric the chapters of ``profile`` read, as (label, compute) in the order to compute
    them: the calls the chapters make, with the chapters' default settings, so that each lands in
    the cache file the chapter will look for. Finished runs only (loading them trains nothing)."""
    named = set(load_profile(profile))
    ev = make_config("evaluation", profile)
    steps: list[tuple[str, Callable[[], Any]]] = []
    if "gan" in named or "acgan" in named or "vae" in named:
        judges = evaluate.yardsticks(profile, ev)
        names = list(judges)
        first = judges[names[0]]
        models: dict[str, list[Any]] = {}
        if "gan" in named:
            sweep, choice = evaluate.gan_sweep(profile, ev, first)
            models["gan"] = next(r["runs"] for r in sweep
                                 if (r["beta1"], r["batch_size"]) == (choice["beta1"], choice["batch_size"]))
        if "acgan" in named:
            models["acgan"] = evaluate.model_runs("acgan", profile, ev, first)
        if "vae" in named:
            models["vae"] = evaluate.model_runs("vae", profile, ev)
        for model, rs in models.items():
            for r in rs:
                for name, clf in judges.items():
                    steps.append((f"{model} seed {r.cfg.seed}: samples judged by {name}",
                                  lambda r=r, clf=clf, p=(name == names[0]): evaluate.sample_metrics(r, ev, clf, parzen=p)))
                if model == "vae":
                    steps.append((f"vae seed {r.cfg.seed}: NLL", lambda r=r: evaluate.vae_nll(r, ev)))
                if model == "gan":
                    steps.append((f"gan seed {r.cfg.seed}: nearest training images",
                                  lambda r=r: evaluate.nearest_training_distance(r)))
        for name, clf in judges.items():
            steps.append((f"real images judged by {name}", lambda clf=clf: evaluate.real_metrics(ev, clf)))
        if "gan" in named:  # the objective chapter scores its runs' final samples with the first yardstick
            # (the follow-up groups' once they are trained: until then the edition goes without them)
            pending = [n for n in followup_groups(profile) if not finished(profile, n)]
            for name, group in profile_groups(profile, ev).items():
                if group["model"] == "gan" and (group.get("log_steps") or group.get("ship_first")) and name not in pending:
                    cfgs = group_members(profile, group, ev)
                    for r in get_member_runs(cfgs, profile, judge=first if cfgs[0].quality_every else None,
                                             log_steps=group.get("log_steps", False)):
                        steps.append((f"objective run {r.path.name}: samples judged by {names[0]}",
                                      lambda r=r: evaluate.sample_metrics(r, ev, first, parzen=False)))
    if "iwae" in named:
        steps.append(("IWAE table: NLL and active units", lambda: evaluate.iwae_table(profile, ev)))
    return steps


def measure(profile: str, deadline: float | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Compute (or find cached) every metric of :func:`metric_steps`; returns what was left undone
    because the deadline came (a metric is never cut part way: each is written whole or not)."""
    steps = metric_steps(profile)
    left: list[str] = []
    for i, (label, compute) in enumerate(steps):
        if deadline is not None and time.time() >= deadline:
            left = [lbl for lbl, _ in steps[i:]]
            break
        t0 = time.perf_counter()
        compute()
        log(f"metrics {i + 1}/{len(steps)}: {label} ({time.perf_counter() - t0:.1f} s)")
    return left
