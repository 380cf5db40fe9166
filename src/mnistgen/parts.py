"""An edition shipped in parts: one verified archive per group of runs, committed as it is trained.

    python -m mnistgen bundle export --profile paper --group "gan batch_size=64"   # -> editions/paper/<group>.tar.gz
    python -m mnistgen bundle import editions/paper                                # verify every part, install
    python -m mnistgen edition status --profile paper                              # shipped / here / missing

The paper edition is hours of CPU training (``benchmarks/cpu_bill.py``), more than one session of
a 2-core machine, so its groups (``edition.profile_groups``) are trained one or two at a time and
each is shipped on its own: a part holds, per run of the group, its manifest, history, cached
metrics and ``weights.pt`` (``runs.shipped_bytes``: no optimiser state, no discriminator), plus
``part.json`` (group, run ids, provenance) and ``SHA256SUMS``. ``editions/<profile>/parts.json``
records each part's SHA-256, size and run ids, and the training-code version every part must share.

What a part ships: the weights the edition's metrics and figures still need once the machine that
trained them is gone. The GAN-family and VAE groups ship every seed's generator or VAE (the sweep's
pick, whose seeds the evaluation chapter scores, is known only when both sweep groups are in; the
VAE's likelihood is computed over every seed), the classifier groups their network, the objective
runs their first seed's generator (their figure; their metrics are computed at export,
``own_metrics``) and the IWAE rows no weights (their curves, and their test NLL and active units
computed at export), with the fixed-noise snapshots of each setting's first seed.

Import checks each archive against ``parts.json`` and each member against the part's own sums,
and refuses a part whose run ids this code would not compute (another training code or profile),
naming the files that differ, before anything is installed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import edition, machine, schemas
from .bundle import EDITIONS_DIR, _write_tar, code_changes, provenance, run_files
from .config import make_config
from .runs import (BUNDLE_FILE, RESULTS_ROOT, atomic_write_bytes, atomic_write_json, code_version, get_member_runs, get_runs,
                   read_checkpoint, results_dir)
from .schemas import PartMeta, SchemaError, inside
from .transfer import PART_FILE, SUMS, TransferError, _install_runs, check_runs, unpack_verified

PARTS_FILE = "parts.json"
PART_FORMAT = 1


def parts_dir(profile: str, root: Path = EDITIONS_DIR) -> Path:
    return Path(root) / profile


def part_name(group: str) -> str:
    """The file name of a group's part: its name with every run of other characters as one '-'."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", group).strip("-") + ".tar.gz"


def read_parts(profile: str, root: Path = EDITIONS_DIR) -> dict[str, Any]:
    """``parts.json`` of ``profile`` (an empty record where none is shipped yet), checked against
    its schema (``schemas.PartsRecord``) and the profile it is filed under; TransferError if not."""
    try:
        p = inside(Path(root), schemas.check_name(profile, "profile"), PARTS_FILE)
        if not p.is_file():
            return {"profile": profile, "format": PART_FORMAT, "code_version": None, "parts": {}}
        record = schemas.read_json(p, schemas.PartsRecord)
    except SchemaError as e:
        raise TransferError(str(e)) from None
    if record.profile != profile:
        raise TransferError(f"{p} is the record of profile {record.profile!r}, not {profile!r}; refused")
    return record.model_dump(mode="json")


def shipped_weights(profile: str, name: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    """run id -> (models whose weights the part ships, whether its snapshots go too); module docstring."""
    ev = make_config("evaluation", profile)
    group = edition.profile_groups(profile, ev)[name]
    members = edition.group_members(profile, group, ev)
    ids = edition.run_ids(profile)[name]
    model = group["model"]
    first_of_setting: set[str] = set()
    seen = set()
    for c, rid in zip(members, ids):
        setting = getattr(c, "beta1", None)
        if setting not in seen:
            seen.add(setting)
            first_of_setting.add(rid)
    out = {}
    for c, rid in zip(members, ids):
        first = rid in first_of_setting
        if model == "classifier":
            out[rid] = (("net",), False)
        elif model in ("gan", "acgan"):
            # the objective runs: numbers (cached at export), curves and one figure
            every_seed = not (group.get("log_steps") or group.get("ship_first"))
            out[rid] = (("G",) if every_seed or first else (), first)
        elif model == "vae":
            out[rid] = (("vae",), False)
        else:  # the IWAE rows: numbers only
            out[rid] = ((), False)
    return out


def own_metrics(profile: str, name: str) -> list[tuple[str, Callable[[], Any]]]:
    """The metrics of ``edition.metric_steps`` that group ``name`` needs alone (with the yardsticks),
    as the same calls, so they land in the cache files the chapters read: computed when its part
    is exported, so the part need not ship the weights behind them. The objective runs' final
    samples judged by the first yardstick; the IWAE rows' test NLL and active units, per seed;
    the other groups' metrics wait for the edition (the sweep's pick, the evaluation chapter's
    models) and ship their weights instead."""
    from . import evaluate

    ev = make_config("evaluation", profile)
    group = edition.profile_groups(profile, ev)[name]
    if group["model"] == "iwae":
        # the IWAE rows ship no weights, so their numbers go with them: per run the NLL and the
        # active units, through the calls (configuration, runs, settings) evaluate.iwae_table makes
        table = make_config("iwae_table", profile)
        ev_table = dataclasses.replace(ev, nll_images=table.nll_images)
        cfg = make_config("iwae", profile, objective=group["objective"], k=group["k"], device=ev.device)
        steps: list[tuple[str, Callable[[], Any]]] = []
        for r in get_runs(cfg, profile, list(table.seeds)):
            steps.append((f"{name} seed {r.cfg.seed}: NLL", lambda r=r: evaluate.vae_nll(r, ev_table)))
            steps.append((f"{name} seed {r.cfg.seed}: active units", lambda r=r: evaluate.active_units(r)))
        return steps
    if group["model"] != "gan" or not (group.get("log_steps") or group.get("ship_first")):
        return []
    first = evaluate.classifier_run(profile, ev.yardsticks[0], ev.device)
    cfgs = edition.group_members(profile, group, ev)
    rs = get_member_runs(cfgs, profile, judge=first if cfgs[0].quality_every else None,
                         log_steps=group.get("log_steps", False))
    return [(f"objective run {r.path.name}: samples judged by {ev.yardsticks[0]}",
             lambda r=r: evaluate.sample_metrics(r, ev, first, parzen=False)) for r in rs]


def export_part(profile: str, name: str, root: Path = EDITIONS_DIR,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write group ``name``'s part and record it in ``parts.json``; every run must be finished here.
    Refused if the parts already shipped were made by other training code (mixing would make an
    edition no single code computes)."""
    ev = make_config("evaluation", profile)
    groups = edition.profile_groups(profile, ev)
    if name not in groups:
        raise TransferError(f"profile {profile!r} has no group {name!r}; its groups: " + "; ".join(groups))
    record = read_parts(profile, root)
    ours = code_version()
    if record["code_version"] not in (None, ours):
        raise TransferError(f"the parts shipped in {parts_dir(profile, root)} were trained by code "
                            f"{record['code_version']}, this checkout's training code is {ours}: a part of this "
                            "code would not belong to the same edition (retrain the shipped groups, or check out "
                            "the code they were made with)")
    runs_root = results_dir(profile, RESULTS_ROOT) / "runs"
    ids = edition.run_ids(profile)[name]
    missing = [rid for rid in ids if not (runs_root / rid / "manifest.json").is_file()
               or not (runs_root / rid / "checkpoint.pt").is_file()]
    if missing:
        raise TransferError(f"group {name!r} of profile {profile!r} is not trained here ({len(missing)} of "
                            f"{len(ids)} runs unfinished in {runs_root}: {', '.join(missing[:3])}"
                            f"{' ...' if len(missing) > 3 else ''}); run `mnistgen train all --profile {profile} "
                            f"--group {name!r}` first")
    for label, compute in own_metrics(profile, name):  # cached: a second export computes nothing
        t0 = time.perf_counter()
        compute()
        log(f"metric: {label} ({time.perf_counter() - t0:.1f} s)")
    policy = shipped_weights(profile, name)
    files, manifests = run_files(runs_root, ids, policy)
    meta = {"format": PART_FORMAT, "profile": profile, "group": name, "runs": ids,
            "shipped": {rid: {"models": list(m), "snapshots": s} for rid, (m, s) in policy.items()},
            "provenance": provenance(profile, manifests, results_dir(profile, RESULTS_ROOT))}
    files[PART_FILE] = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
    files[SUMS] = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in sorted(files.items())).encode()
    out = parts_dir(profile, root) / part_name(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, lambda f: _write_tar(f, files))
    out.chmod(0o644)
    blob = out.read_bytes()
    record["code_version"] = ours
    record["parts"][name] = {"file": out.name, "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob),
                             "runs": ids, "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             # the group trains as one batch: its members share one wall time
                             "training_wall_seconds": max(m["wall_seconds"] for m in manifests),
                             "device_name": meta["provenance"]["device_name"],
                             "machine": meta["provenance"]["machine"]}
    record["parts"] = dict(sorted(record["parts"].items()))
    atomic_write_json(parts_dir(profile, root) / PARTS_FILE, record)
    (parts_dir(profile, root) / PARTS_FILE).chmod(0o644)
    log(f"part: {out} ({len(blob) / 2**20:.2f} MiB, {len(ids)} runs, {len(files)} files)")
    return record["parts"][name]


def read_part(path: Path, digest: str, into: Path, profile: str) -> PartMeta:
    """Unpack the part at ``path`` into ``into``: the archive's SHA-256 must be ``digest``, every
    member must match the part's SHA256SUMS, and its part.json and runs their schemas (of
    ``profile``, only the runs it lists); returns part.json, typed."""
    unpack_verified(path, into, "part", digest, PARTS_FILE, meta_file=PART_FILE)
    try:
        meta = schemas.read_json(into / PART_FILE, PartMeta, f"{path}: {PART_FILE}")
    except SchemaError as e:
        raise TransferError(str(e)) from None
    if meta.profile != profile:
        raise TransferError(f"part {path} is of profile {meta.profile!r}, not {profile!r}; refused")
    check_runs(into / "runs", meta.runs, profile, f"part {path}")
    return meta


def part_machine(meta: PartMeta, folder: Path) -> dict[str, Any]:
    """The machine a part (unpacked in ``folder``) records: its own record, else its runs' manifests'."""
    if meta.provenance.machine is not None:
        return meta.provenance.machine.model_dump()
    return machine.merge([machine.from_manifest(json.loads((folder / "runs" / rid / "manifest.json").read_text()))
                          for rid in meta.runs])


def import_parts(profile: str, root: Path = EDITIONS_DIR, results_root: Path = RESULTS_ROOT,
                 log: Callable[[str], None] = print) -> list[str]:
    """Verify every part of ``profile`` listed in ``parts.json``, then install their runs into
    ``results/<profile>/runs`` (nothing is installed unless every part verified and every part's
    run ids are this code's). Returns the groups installed."""
    record = read_parts(profile, root)
    if not record["parts"]:
        return []
    ours = edition.run_ids(profile)
    Path(results_root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=results_root, prefix=".parts-import-") as tmp:
        staged_all = []
        for name, entry in record["parts"].items():
            staged = Path(tmp) / part_name(name)
            meta = read_part(inside(parts_dir(profile, root), entry["file"]), entry["sha256"], staged, profile)
            if meta.group != name or meta.runs != entry["runs"]:
                raise TransferError(f"part {entry['file']} holds group {meta.group!r} with other runs than "
                                    f"{PARTS_FILE} lists; refused")
            claimed = {meta.provenance.code_version, record["code_version"]}
            if ours.get(name) != meta.runs or claimed != {code_version()}:
                changes = code_changes(profile, meta.provenance) or [
                    f"the group {name!r} of profile {profile!r}" if ours.get(name) != meta.runs else
                    f"the training code it states ({', '.join(sorted(str(c) for c in claimed))}) is not this checkout's"]
                raise TransferError(f"part {entry['file']} was trained by other code or settings than this "
                                    f"checkout's (it states code {meta.provenance.code_version}, here {code_version()}): "
                                    + "; ".join(changes) + f". Retrain it: `mnistgen train all --profile {profile} "
                                    f"--group {name!r}`")
            staged_all.append(staged)
        dest = inside(Path(results_root), profile) / "runs"
        for staged in staged_all:
            _install_runs(staged / "runs", dest, Path(tmp), replace=False, log=log)
    log(f"parts: installed {len(record['parts'])} part(s) of profile {profile!r} into {dest}")
    return list(record["parts"])


def assemble(profile: str, root: Path = EDITIONS_DIR, out: Path | None = None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """The last step of an edition shipped in parts: once every group is in, install them all,
    compute every metric the chapters read (``edition.measure``: the sweep's pick, the evaluation
    chapter's models, the VAE's likelihood over every seed) and write the edition's bundle
    (``bundle.export``, default ``editions/<profile>.tar.gz``), which ``make book`` renders from
    without training or measuring anything. The bundle holds every run's manifest, history and
    metrics but no weights: it names each part by its SHA-256 (in ``<root>/<profile>/``, beside it),
    and import takes the weights from them, verified, so the repository ships them once."""
    from . import bundle

    record = read_parts(profile, root)
    ids = edition.run_ids(profile)
    followup = edition.followup_groups(profile)  # not shipped yet: pending, the edition goes without them
    missing = [name for name in ids if name not in record["parts"] and name not in followup]
    if missing:
        raise TransferError(f"{len(missing)} of {len(ids)} groups of profile {profile!r} are not shipped in "
                            f"{parts_dir(profile, root)}: {'; '.join(missing)}. Train and export them first "
                            f"(`mnistgen edition status --profile {profile}` lists them)")
    import_parts(profile, root, log=log)  # verified; runs already here are kept
    provenance = {name: {k: e[k] for k in ("file", "sha256", "bytes", "exported", "training_wall_seconds", "device_name")}
                  for name, e in record["parts"].items()}
    shipped: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:  # what each part's weights hold, as its part.json says
        for name, e in record["parts"].items():
            meta = read_part(inside(parts_dir(profile, root), e["file"]), e["sha256"], Path(tmp) / e["file"], profile)
            shipped.update({rid: s.model_dump() for rid, s in meta.shipped.items()})
            # the machine it was trained on, from the part's own contents (parts made before the
            # record existed: what their manifests say, "unknown" for the rest)
            provenance[name]["machine"] = part_machine(meta, Path(tmp) / e["file"])
            provenance[name]["trained_at_commits"] = meta.provenance.trained_at_commits
            provenance[name]["last_run_finished"] = meta.provenance.last_run_finished
    made_of = {"folder": parts_dir(profile, root), "shipped": shipped,
               "parts": {name: {k: e[k] for k in ("file", "sha256", "runs")} for name, e in record["parts"].items()}}
    out = Path(out) if out is not None else Path(root) / f"{profile}.tar.gz"
    return bundle.export(profile, out, log=log, extra={"parts": provenance}, made_of=made_of)


def assembled(profile: str, root: Path = EDITIONS_DIR) -> dict[str, Any] | None:
    """Where ``edition assemble`` has written ``<root>/<profile>.tar.gz``: its path, how many parts it
    names and whether they are the parts ``parts.json`` lists now (same SHA-256); else None."""
    path = Path(root) / f"{profile}.tar.gz"
    if not path.is_file():
        return None
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            member = tar.getmember(BUNDLE_FILE)
            if not member.isreg() or member.size > schemas.MAX_JSON_BYTES:
                raise ValueError(f"its {BUNDLE_FILE} is not a small plain file")
            meta = schemas.parse_json(tar.extractfile(member).read(), schemas.BundleMeta, f"{path}: {BUNDLE_FILE}")
    except (tarfile.TarError, EOFError, OSError, KeyError, AttributeError, ValueError, zlib.error) as e:
        raise TransferError(f"{path} is not a readable bundle ({type(e).__name__}: {e})") from None
    named = {n: e.sha256 for n, e in meta.parts.files.items()} if meta.parts else {}
    listed = {n: e["sha256"] for n, e in read_parts(profile, root)["parts"].items()}
    return {"path": str(path), "parts": len(named), "current": bool(named) and named == listed}


MEASURED_DIR = EDITIONS_DIR.parent / "benchmarks" / "measured"


def measured_all(prefix: str, folder: Path = MEASURED_DIR) -> list[dict[str, Any]]:
    """Every committed measurement ``benchmarks/measured/<prefix>-<date>.json``, oldest first."""
    return [json.loads(f.read_text()) for f in sorted(Path(folder).glob(f"{prefix}-*.json"))]


def measured(prefix: str, folder: Path = MEASURED_DIR) -> dict[str, Any] | None:
    """The newest committed measurement ``benchmarks/measured/<prefix>-<date>.json``, or None."""
    records = measured_all(prefix, folder)
    return records[-1] if records else None


def measured_bill(folder: Path = MEASURED_DIR) -> dict[str, Any] | None:
    """The newest committed CPU bill (``benchmarks/measured/cpu-bill-*.json``, written from ``make bench``)."""
    return measured("cpu-bill", folder)


def status(profile: str, root: Path = EDITIONS_DIR, results_root: Path = RESULTS_ROOT,
           bill: dict[str, Any] | None = None, iwae_cost: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every group of ``profile``: shipped (a part in parts.json), trained here (every run finished in
    the results folder), partly here (the epochs its checkpoints reached) or missing; with its
    projected CPU hours where ``bill`` (``benchmarks/cpu_bill.py``'s result) has the group, or, for an
    IWAE row, where ``iwae_cost`` (``benchmarks/iwae_cost.py``'s) timed an epoch of it with as many seeds."""
    record = read_parts(profile, root)
    ev = make_config("evaluation", profile)
    groups = edition.profile_groups(profile, ev)
    runs_root = results_dir(profile, results_root) / "runs"
    rows = []
    for name, ids in edition.run_ids(profile).items():
        done = [rid for rid in ids if (runs_root / rid / "manifest.json").is_file()]
        started = [rid for rid in ids if (runs_root / rid / "checkpoint.pt").is_file() and rid not in done]
        if name in record["parts"]:
            state = "shipped"
        elif len(done) == len(ids):
            state = "trained here"
        elif done or started:
            epochs = sorted({_epoch(runs_root / rid) for rid in started})
            state = f"partly here: {len(done)} of {len(ids)} runs finished" + (
                f", the others at epoch {', '.join(map(str, epochs))}" if epochs else "")
        else:
            state = "missing"
        hours = (bill or {}).get("after", {}).get(name, {}).get("total_s")
        timed = (iwae_cost or {}).get("rows", {}).get(name, {}).get(f"{profile}_{len(ids)}_seeds")
        if hours is None and timed is not None:
            epochs = edition.group_members(profile, groups[name], ev)[0].epochs
            hours = epochs * (timed["steps_per_epoch"] * timed["ms_per_step"] / 1000 + timed["eval_s"])
        rows.append({"group": name, "runs": len(ids), "state": state,
                     "projected_hours": None if hours is None else round(hours / 3600, 2),
                     **({"part": record["parts"][name]} if name in record["parts"] else {})})
    return rows


def _epoch(run: Path) -> int:
    try:
        return int(read_checkpoint(run / "checkpoint.pt")["state"]["epoch"])
    except Exception:  # noqa: BLE001 - a checkpoint being rewritten right now: unknown
        return -1
