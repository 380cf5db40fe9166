"""Command line: train a run outside a notebook, render chapters with papermill, fetch data.

    python -m mnistgen train gan --profile paper -p seeds [0,1]  # two seeds as one batch; the book reuses them
    python -m mnistgen train all --profile paper                 # every run and metric of the paper edition
    python -m mnistgen train all --profile paper --time-limit 480  # stop cleanly before 8 minutes; rerun resumes
    python -m mnistgen bundle export --profile paper             # -> editions/paper.tar.gz (verified archive)
    python -m mnistgen bundle import editions/paper.tar.gz       # install it: the paper book renders, trains nothing
    python -m mnistgen render gan --profile quick -p epochs 50  # one chapter -> book/generated/
    python -m mnistgen render all --profile quick               # every chapter, in order
    python -m mnistgen render all --profile paper --jobs 2      # two chapters at a time

Parameters are validated against the chapter's ``parameters`` cell and the model's config
before anything runs: an unknown name, a wrong type or an out-of-range value stops here.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .chapters import CHAPTERS, ParameterError, validate
from .config import CONFIGS, ConfigError, make_config, profile_names
from .runs import DATA_ROOT, REPO_DIR, code_version

GENERATED_DIR = REPO_DIR / "book" / "generated"


class UsageError(ValueError):
    pass


def parse_params(pairs: list[list[str]] | None) -> dict[str, Any]:
    """``[["epochs", "50"], ...]`` -> ``{"epochs": 50}``: every value read as YAML (papermill's ``-y``
    does the same; its ``-p`` passes strings, which the chapter reads as YAML where it needs no string)."""
    return {k: yaml.safe_load(v) for k, v in (pairs or [])}


def render(chapter: str, profile: str, params: dict[str, Any], out_dir: Path = GENERATED_DIR,
           say: Any = print) -> Path:
    """Execute one chapter with papermill into ``out_dir/<stem>.ipynb`` (written only on success).
    Where that replaces a page of another profile or other parameters, ``say`` tells which."""
    import jupytext
    import papermill

    from . import pages

    params = validate(chapter, profile, params)
    stem = CHAPTERS[chapter].stem
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{stem}.ipynb"
    before = pages.read_page(out) if out.is_file() else None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / f"{stem}.ipynb", Path(tmp) / f"{stem}.out.ipynb"
        jupytext.write(jupytext.read(CHAPTERS[chapter].notebook), src)
        t0 = time.perf_counter()
        say(f"render: {chapter} ({stem}) with profile {profile} {params or ''}")
        papermill.execute_notebook(str(src), str(dst), parameters={"profile": profile, **params},
                                   kernel_name="python3", cwd=str(REPO_DIR), progress_bar=False)
        nb = jupytext.read(dst, fmt="ipynb")
        for cell in nb.cells:  # the page states its profile and parameters in prose: hide both cells
            tags = cell.metadata.get("tags", [])
            if ("injected-parameters" in tags or "parameters" in tags) and "remove-cell" not in tags:
                cell.metadata["tags"] = [*tags, "remove-cell"]
        jupytext.write(nb, dst, fmt="ipynb")
        os.replace(dst, out)
    say(f"render: {out} in {time.perf_counter() - t0:.0f} s")
    now = pages.read_page(out)
    if before is not None and now is not None and before.edition != now.edition:
        say(f"render: this replaced the page rendered with {before.describe()}; the book is now mixed "
            f"(every page says so). `make book` renders every chapter as one edition again, reusing the "
            "runs already trained.")
    return out


def cmd_render(args: argparse.Namespace) -> None:
    params = parse_params(args.p)
    chapters = list(CHAPTERS) if args.chapter == "all" else [args.chapter]
    if args.chapter == "all" and params:
        raise UsageError("parameters (-p) apply to one chapter; name it instead of 'all'")
    for ch in chapters:  # validate everything before running anything
        validate(ch, args.profile, params)
    out_dir = Path(args.out).resolve() if args.out else GENERATED_DIR
    if len(chapters) == 1:
        from .progress import RunsBar

        planned = [] if params else CHAPTERS[chapters[0]].planned_runs(args.profile)
        with RunsBar(args.profile, planned=planned) as bar:
            render(chapters[0], args.profile, params, out_dir, say=bar.write)
    else:
        # the page on how the edition was made reads every run's manifest: it goes once they are all there
        last = [ch for ch in chapters if ch == "edition"]
        first = [ch for ch in chapters if ch != "edition"]
        if args.jobs == 1:
            for ch in first:
                render(ch, args.profile, params, out_dir)
        else:
            render_parallel(first, args.profile, out_dir, args.jobs, args.scheduler)
        for ch in last:
            render(ch, args.profile, params, out_dir)


# Longest chapters first so the two workers finish together: the VAE chapter (with the IWAE
# rows) right after the first of the two GAN chapters, the short objective chapter after the
# second; the evaluation chapter, which reads every model, goes last. Shared runs are trained
# once: runs.exclusive makes the others wait.
PARALLEL_ORDER = ("gan", "acgan", "vae", "gan_objective", "evaluation")


LOG_DIR = REPO_DIR / "_build" / "logs"


def render_parallel(chapters: list[str], profile: str, out_dir: Path, jobs: int, scheduler: str | None = None,
                    log_file: Path | None = None) -> None:
    """Render chapters as tasks of a Dask cluster (``executor``), ``jobs`` at a time.

    Locally a LocalCluster of ``jobs`` single-process workers with cores/jobs torch threads each:
    on 2 CPU cores two single-threaded trainings together do ~1.5x the work of one two-threaded
    training (measured: small matrix products scale poorly across threads). With a scheduler
    (``--scheduler`` or $MNISTGEN_SCHEDULER) the chapters go to that cluster instead. Chapters
    start in PARALLEL_ORDER, each on whichever worker frees first (``executor.run``).

    The console gets one line as each chapter starts and ends (with its wall time) and a bar over
    the profile's runs as they finish, with an ETA; the cluster's and the kernels' own logs go to
    ``log_file`` (default ``_build/logs/render-<profile>.log``), named at the start.
    """
    from . import executor
    from .progress import RunsBar

    log_file = Path(log_file) if log_file is not None else LOG_DIR / f"render-{profile}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("")
    queue = sorted(chapters, key=PARALLEL_ORDER.index)
    print(f"render: {len(queue)} chapter(s) of profile {profile!r}, {jobs} at a time; the logs of Dask and of "
          f"the kernels: {log_file}", flush=True)
    tasks = {f"render {ch}": (_render_task, (ch, profile, str(out_dir), str(log_file))) for ch in queue}
    t0 = time.perf_counter()
    handler = logging.FileHandler(log_file)
    quiet = [logging.getLogger(n) for n in ("mnistgen.executor", "distributed")]
    for lg in quiet:  # the cluster's start-up lines go to the log, not the console
        lg.addHandler(handler)
        lg.propagate = False
    try:
        with RunsBar(profile) as bar, executor.cluster(jobs, scheduler) as client:
            def announce(key: str, what: str, seconds: float) -> None:
                bar.write(f"chapter {key.removeprefix('render ')}: {what}"
                          + ("" if what == "started" else f" after {seconds:.0f} s"))
            executor.run(client, tasks, f"{profile}: chapters", progress=False, announce=announce)
    except executor.ClusterError as e:
        failed = [ch for ch in queue if f"'render {ch}'" in str(e)]
        raise UsageError(f"chapter(s) {failed} failed (full log: {log_file}):\n{e}" if failed else str(e)) from None
    finally:
        for lg in quiet:
            lg.removeHandler(handler)
            lg.propagate = True
        handler.close()
    print(f"render: {len(queue)} chapter(s) in {time.perf_counter() - t0:.0f} s", flush=True)


def _render_task(chapter: str, profile: str, out_dir: str, log_file: str | None = None) -> str:
    """One chapter, in a Dask worker: papermill's kernel inherits the worker's thread settings
    and, with ``log_file``, its standard output and error (papermill's and the kernel's logs)."""
    if log_file is None:
        return str(render(chapter, profile, {}, Path(out_dir)))
    with open(log_file, "a") as log, _fds_to(log):
        return str(render(chapter, profile, {}, Path(out_dir)))


@contextlib.contextmanager
def _fds_to(f: Any) -> Any:
    """Point this process's file descriptors 1 and 2 (and so those of processes it starts) at ``f``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _check_writable(root: Path) -> None:
    """Refuse a results folder that cannot be written before any task starts (nothing half-written)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UsageError(f"the results folder {root} cannot be written ({e}); set MNISTGEN_RESULTS to a "
                         "folder every worker can write") from None


TIME_LIMIT_EXIT = 3  # `train all --time-limit` stopped with work left: the same command resumes it


def cmd_train(args: argparse.Namespace) -> None:
    from . import evaluate
    from .runs import check_seeds, get_runs

    params = parse_params(args.p)
    if args.model == "all":
        if params or args.retrain:
            raise UsageError("'train all' takes the profile's settings; -p and --retrain apply to one model")
        if args.time_limit is not None and args.time_limit <= 0:
            raise UsageError(f"--time-limit must be a positive number of seconds, got {args.time_limit}")
        results_root = Path(os.environ.get("MNISTGEN_RESULTS", REPO_DIR / "results"))
        _check_writable(results_root)
        sys.exit(train_all(args.profile, results_root, args.jobs, args.scheduler, args.time_limit, args.no_metrics,
                           args.group))
    if args.time_limit is not None or args.group:
        raise UsageError("--time-limit and --group apply to 'train all'")
    seeds = params.pop("seeds", None)
    cfg = make_config(args.model, args.profile, **params)
    seeds = check_seeds([cfg.seed] if seeds is None else seeds)
    judge = None
    if getattr(cfg, "quality_every", 0):  # GAN-family runs are scored by the first yardstick as they train
        ev = make_config("evaluation", args.profile, device=cfg.device)
        judge = evaluate.classifier_run(args.profile, ev.yardsticks[0], cfg.device, progress=True)
    for run in get_runs(cfg, args.profile, seeds, judge=judge, retrain=args.retrain, progress=True):
        print(run.summary())


def train_all(profile: str, results_root: Path, jobs: int | None, scheduler: str | None,
              time_limit: float | None, no_metrics: bool = False, groups: list[str] | None = None) -> int:
    """Every run of the edition (or of ``groups``), then every metric its chapters read (``edition``;
    not with ``groups``), stopping cleanly before ``time_limit`` seconds; the exit status: 0 all
    done, TIME_LIMIT_EXIT work left."""
    from . import edition
    from .runs import atomic_write_json, device_name, results_dir
    from .state import resolve_device

    try:
        edition.select_groups(profile, groups)
    except ValueError as e:
        raise UsageError(str(e)) from None
    started = time.time()
    # a margin for what runs after the last epoch: writing the last checkpoints and the summary
    deadline = None if time_limit is None else started + time_limit - min(30.0, 0.05 * time_limit)
    results = edition.train_profile(profile, jobs, scheduler, deadline=deadline, results_root=results_root,
                                    only=groups)
    no_metrics = no_metrics or groups is not None  # a group's metrics come with its part (bundle export --group)
    stopped = {label: r["stopped"] for label, r in results.items() if "stopped" in r}
    for label, r in results.items():
        for line in r.get("done", []):
            print(f"{label}: {line}")
    trained_s = time.time() - started
    left = [] if no_metrics or stopped else edition.measure(profile, deadline)
    wall = time.time() - started
    device = make_config("evaluation", profile).device
    summary = {"profile": profile, "wall_seconds": round(wall, 1), "training_seconds": round(trained_s, 1),
               "device_name": device_name(resolve_device(device)), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "time_limit": time_limit, "groups": len(results), "only": groups, "stopped": stopped,
               "metrics_left": left,
               "complete": not stopped and not left and not no_metrics}
    atomic_write_json(results_dir(profile, results_root) / "train-all.json", summary)
    for label, why in stopped.items():
        print(f"{label}: {why}")
    if stopped or left:
        print(f"time limit: {len(results) - len(stopped)} of {len(results)} groups finished"
              + (f", {len(left)} metrics left" if left else "") + f" after {wall:.0f} s; everything done is "
              "saved: run the same command again to resume", file=sys.stderr)
        return TIME_LIMIT_EXIT
    print(f"train all --profile {profile}: {len(results)} groups" + ("" if no_metrics else " and their metrics")
          + f" in {wall:.0f} s")
    return 0


def cmd_bundle(args: argparse.Namespace) -> None:
    from . import bundle

    try:
        if args.action == "export" and args.group:
            from . import parts

            if args.out:
                raise UsageError("--out applies to a whole edition's bundle; a group's part goes to editions/<profile>/")
            parts.export_part(args.profile, args.group)
        elif args.action == "export":
            bundle.export(args.profile, Path(args.out) if args.out else None)
        elif Path(args.path).is_dir():  # a folder of parts (editions/<profile>/parts.json)
            from . import parts

            record = parts.read_parts(Path(args.path).name, Path(args.path).parent)
            if not record["parts"]:
                raise UsageError(f"{args.path} has no {parts.PARTS_FILE} listing parts")
            parts.import_parts(record["profile"], Path(args.path).parent)
        else:
            bundle.import_bundle(Path(args.path), other_code=args.other_code)
    except bundle.BundleError as e:
        raise UsageError(str(e)) from None


def _verify(args: argparse.Namespace) -> None:
    """Exit status 0: every group made again bitwise; 1: some differ (each says where)."""
    from . import verify
    from .runs import atomic_write_json

    t0 = time.perf_counter()
    try:
        checks, left = verify.verify(args.profile, args.groups or None, root=args.editions, scratch=args.scratch)
    except verify.TransferError as e:
        raise UsageError(str(e)) from None
    wall = time.perf_counter() - t0
    for line in left:
        print(f"not in the default set: {line}")
    equal = sum(c.equal for c in checks)
    print(f"verify: {equal} of {len(checks)} groups made again bitwise by this checkout ({wall:.0f} s in all)")
    if args.record:
        atomic_write_json(Path(args.record), {"profile": args.profile, "date": time.strftime("%Y-%m-%d"),
                                              "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                              "wall_seconds": round(wall, 1), "groups": [c.record() for c in checks],
                                              "left_out": left, "code_version": code_version()})
        print(f"verify: recorded in {args.record}")
    if equal < len(checks):
        raise SystemExit(1)


def cmd_edition(args: argparse.Namespace) -> None:
    from . import parts

    if args.action == "verify":
        _verify(args)
        return
    if args.action == "assemble":
        try:
            parts.assemble(args.profile)
        except parts.TransferError as e:
            raise UsageError(str(e)) from None
        return
    # the measured bill (benchmarks/cpu_bill.py) times the paper profile's groups
    paper = args.profile == "paper"
    rows = parts.status(args.profile, bill=parts.measured_bill() if paper else None,
                        iwae_cost=parts.measured("iwae-cost") if paper else None)
    record = parts.read_parts(args.profile)
    print(f"profile {args.profile!r}: {len(rows)} groups; parts in {parts.parts_dir(args.profile)} "
          f"(training code {record['code_version'] or 'none yet'}, this checkout's {code_version()})")
    from . import edition

    followup = edition.followup_groups(args.profile)
    for r in rows:
        hours = "" if r["projected_hours"] is None else f", {r['projected_hours']:.2f} h projected on CPU"
        size = f", {r['part']['bytes'] / 2**20:.1f} MiB" if "part" in r else ""
        pending = " (follow-up: the edition renders without it until it is shipped)" if (
            r["group"] in followup and r["state"] != "shipped") else ""
        print(f"  {r['group']:38} {r['runs']:2d} runs: {r['state']}{size}{hours}{pending}")
    shipped = sum(r["state"] == "shipped" for r in rows)
    total = sum(r["part"]["bytes"] for r in rows if "part" in r)
    print(f"{shipped} of {len(rows)} groups shipped ({total / 2**20:.1f} MiB)")
    try:
        made = parts.assembled(args.profile)
    except parts.TransferError as e:
        raise UsageError(str(e)) from None
    if made is not None and made["current"]:
        print(f"assembled: {made['path']}, made of these {made['parts']} parts (make book renders it)")
    elif made is not None:
        print(f"{made['path']} is not made of the parts listed now: run `mnistgen edition assemble "
              f"--profile {args.profile}` again")
    elif shipped == len(rows) or all(r["state"] == "shipped" or r["group"] in followup for r in rows):
        print(f"every group is shipped: `mnistgen edition assemble --profile {args.profile}` writes the edition")
    if made is not None and made["current"] and shipped < len(rows):
        print(f"{len(rows) - shipped} follow-up group(s) pending: train one with `mnistgen train all --profile "
              f"{args.profile} --group NAME`, then `mnistgen bundle export --profile {args.profile} --group NAME` "
              f"and `mnistgen edition assemble --profile {args.profile}`")


def cmd_summary(args: argparse.Namespace) -> None:
    import json

    from .report import results_markdown
    from .runs import RESULTS_ROOT

    path = RESULTS_ROOT / args.profile / "metrics.json"
    if not path.is_file():
        raise UsageError(f"no {path}: render the book of profile {args.profile!r} first (make book PROFILE={args.profile})")
    print(results_markdown(json.loads(path.read_text())))


def cmd_pdf(args: argparse.Namespace) -> None:
    import time

    from .printing import PrintError, print_pdf

    start = time.perf_counter()
    try:
        got = print_pdf(Path(args.build), Path(args.out))
    except PrintError as e:
        raise UsageError(str(e)) from None
    print(f"The report as PDF: {Path(args.out).resolve()} ({got['bytes'] / 2**20:.1f} MiB, {got['equations']} "
          f"equations, {got['images']} images; printed in {time.perf_counter() - start:.0f} s)")


def cmd_data(args: argparse.Namespace) -> None:
    from .data import ensure_mnist

    print(f"mnist: {ensure_mnist(args.root)} holds the four files, MD5s verified")


def cmd_pages(args: argparse.Namespace) -> None:
    """What the built book is: one line where every chapter was rendered alike, else one per page."""
    from . import pages

    book = pages.book_pages()
    where = f"The report: {args.html}" if args.html else "The rendered chapters"
    if not book:
        print(f"{where}: no chapter rendered yet (make book)")
    elif not pages.mixed(book):
        print(f"{where} ({next(iter(book.values())).describe()}, every chapter)")
    else:
        print(f"{where}, a mixed book (every page says so); `make book` renders every chapter as one edition again:")
        for line in pages.summary(book):
            print(f"  {line}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mnistgen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    profiles = profile_names()
    r = sub.add_parser("render", help="execute chapter notebooks with papermill")
    r.add_argument("chapter", help=f"one of {sorted(CHAPTERS)} or 'all'")
    r.add_argument("--profile", default="quick", choices=profiles)
    r.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
    r.add_argument("--out", help="output folder (default book/generated)")
    r.add_argument("--jobs", type=int, default=1, choices=range(1, 9), metavar="N",
                   help="with 'all': render N chapters at a time (Dask workers), each with cores/N torch threads")
    r.add_argument("--scheduler", help="address of a Dask scheduler to render on (default: $MNISTGEN_SCHEDULER, "
                   "else a LocalCluster of N workers)")
    r.set_defaults(func=cmd_render)
    t = sub.add_parser("train", help="train (or resume, or reuse) runs: one model's seeds, or every run of a profile")
    t.add_argument("model", choices=sorted(m for m in CONFIGS if m not in ("evaluation", "gan_sweep", "iwae_table", "followup"))
                   + ["all"],
                   help="a model (-p seeds [0,1,2] trains several seeds as one batch) or 'all'")
    t.add_argument("--profile", default="quick", choices=profiles)
    t.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
    t.add_argument("--retrain", action="store_true", help="discard an existing run directory's checkpoint")
    t.add_argument("--jobs", type=int, default=None, choices=range(1, 65), metavar="N",
                   help="with 'all': groups trained at a time on this machine (CPU: N Dask worker processes "
                        "with cores/N torch threads, default 2; GPU: N threads sharing the device, default all)")
    t.add_argument("--scheduler", help="with 'all': address of a Dask scheduler (default: $MNISTGEN_SCHEDULER, "
                   "else a LocalCluster)")
    t.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="with 'all': stop cleanly before this many seconds (finished runs complete, the others "
                        "checkpointed; exit status 3): the same command resumes")
    t.add_argument("--no-metrics", action="store_true", help="with 'all': train only, compute no metrics")
    t.add_argument("--group", action="append", metavar="NAME",
                   help="with 'all': only this group of runs (repeat for more; the GANs' judge comes along); "
                        "`mnistgen edition status` lists them")
    t.set_defaults(func=cmd_train)
    b = sub.add_parser("bundle", help="ship an edition's results as one verified archive, or install one")
    bsub = b.add_subparsers(dest="action", required=True)
    be = bsub.add_parser("export", help="write the bundle of a profile's trained edition")
    be.add_argument("--profile", default="paper", choices=profiles)
    be.add_argument("--out", help="the archive to write (default editions/<profile>.tar.gz)")
    be.add_argument("--group", metavar="NAME", help="only this group of runs, as a part: editions/<profile>/<group>.tar.gz, "
                    "recorded in editions/<profile>/parts.json")
    bi = bsub.add_parser("import", help="verify a bundle and install it into the results folder")
    bi.add_argument("path", help="the bundle (.tar.gz), or a folder of parts (editions/<profile>)")
    bi.add_argument("--other-code", action="store_true",
                    help="install a bundle made by other code anyway; every page then says which code made its numbers")
    b.set_defaults(func=cmd_bundle)
    e = sub.add_parser("edition", help="where an edition stands: every group shipped, trained here, or missing")
    esub = e.add_subparsers(dest="action", required=True)
    es = esub.add_parser("status", help="list every group of the profile with its state and projected CPU hours")
    es.add_argument("--profile", default="paper", choices=profiles)
    ea = esub.add_parser("assemble", help="once every group is shipped: install the parts, compute every metric "
                         "the chapters read and write the edition's bundle (editions/<profile>.tar.gz, which "
                         "make book renders)")
    ea.add_argument("--profile", default="paper", choices=profiles)
    ev = esub.add_parser("verify", help="retrain shipped groups into a scratch folder and compare them with their "
                         "parts: tensors bitwise, histories field by field, metrics (exit 1 where one differs)")
    ev.add_argument("groups", nargs="*", metavar="GROUP",
                    help="groups to retrain (default: the cheapest group of every model family while their "
                    "recorded training fits 5 min; the others are named)")
    ev.add_argument("--profile", default="paper", choices=profiles)
    ev.add_argument("--scratch", help="the folder in which a temporary training folder is made and removed after "
                    "(default: the system's temporary folder)")
    ev.add_argument("--editions", help="the folder holding <profile>/parts.json and the parts (default editions/)")
    ev.add_argument("--record", metavar="JSON", help="also write the result there (the book's page on the edition shows every "
                    "benchmarks/measured/verify-<profile>-<date>T<HHMM>.json)")
    e.set_defaults(func=cmd_edition)

    pg = sub.add_parser("pages", help="say what each rendered chapter is: its profile and parameters")
    pg.add_argument("--html", help="the built book's index page, named in the first line")
    pg.set_defaults(func=cmd_pages)
    s = sub.add_parser("summary", help="print a profile's results (its metrics.json) as Markdown tables")
    s.add_argument("--profile", default="quick", choices=profiles)
    s.set_defaults(func=cmd_summary)
    pdf = sub.add_parser("pdf", help="print the single-page HTML build of the book to one PDF (make pdf)")
    pdf.add_argument("--build", default="_build/singlehtml", help="the single-page build to print (its folder)")
    pdf.add_argument("--out", default="_build/pdf/report.pdf", help="the PDF to write")
    pdf.set_defaults(func=cmd_pdf)
    d = sub.add_parser("data", help="fetch and verify MNIST")
    d.add_argument("--root", default=str(DATA_ROOT))
    d.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # e.g. waiting for a run another process trains
    logging.getLogger("distributed").setLevel(logging.WARNING)  # the cluster's own chatter
    try:
        args.func(args)
    except (ConfigError, UsageError, ParameterError) as e:
        sys.exit(f"error: {e}")
    except ImportError as e:
        sys.exit(f"error: a dependency is missing ({e}); install the project's environment with "
                 "`make venv` (or: pip install -e '.[book,test]')")
    except Exception as e:  # known, user-facing failures get one clear line, not a traceback
        from .data import DataError
        from .runs import CheckpointError, NotInBundle, WeightsNotShipped
        from .train import DeviceError, TrainingDiverged

        from .executor import ClusterError

        if isinstance(e, (DataError, CheckpointError, DeviceError, TrainingDiverged, ClusterError, NotInBundle,
                          WeightsNotShipped)):
            sys.exit(f"error: {e}")
        if type(e).__name__ == "PapermillExecutionError":
            sys.exit(f"error: the notebook failed: {getattr(e, 'ename', '')}: {getattr(e, 'evalue', e)}")
        raise


if __name__ == "__main__":
    main()
