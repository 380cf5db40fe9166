"""Results bundles: one edition of the report (a profile) as one verified archive.

    python -m mnistgen bundle export --profile paper            # -> editions/paper.tar.gz
    python -m mnistgen bundle import editions/paper.tar.gz      # verify, then install into results/

A bundle holds what rendering the edition reads and nothing else (``edition.py`` says what that
is): per run its manifest, history, cached metrics and ``weights.pt`` with only the weights the
figures draw with (the first seed's generator or VAE of a shown model, the judging classifier;
no optimiser states, no discriminators, none at all for runs the report shows only as curves
and numbers), plus ``bundle.json`` (the provenance: device, versions, commit, the hash of every
source file behind a number, the profile's settings, dates, wall times) and ``SHA256SUMS`` over
every other member. The archive is deterministic (sorted members, fixed owner and time).

Import verifies every checksum while unpacking into a folder beside ``results/<profile>`` and
installs only when everything holds: a flipped byte, a missing or an extra file, a truncated
archive is refused naming the file, before ``results/`` is touched. A bundle made by other code
than the checkout's (its run ids, or the metric code behind its numbers, differ) is refused with
what changed; ``--other-code`` installs it anyway, and every page then says which code the
numbers come from.

An edition assembled from parts (``parts.assemble``) ships no weights of its own: its
``bundle.json`` names each part of ``editions/<profile>/`` by its SHA-256, and import takes every
run's weights from its part, verified, so the repository holds them once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import codeversion, edition, evaluate, machine, schemas
from .schemas import BundleMeta, PartsOfBundle, Provenance, SchemaError, inside
from .transfer import (METRIC_CACHES, PART_FILE, SUMS, TransferError, _install_runs, check_runs, file_sha256,
                       unpack_verified)
from .config import PROFILES_DIR, make_config
from .runs import (BUNDLE_FILE, RESULTS_ROOT, SHIPPED_WEIGHTS, TRAINING_SOURCES, PACKAGE_DIR, atomic_write_bytes,
                   atomic_write_json, code_version, environment, git_commit, read_checkpoint, results_dir,
                   shipped_bytes)

BUNDLE_FORMAT = 1
EDITIONS_DIR = PACKAGE_DIR.parents[1] / "editions"  # bundles committed with the code
TRAIN_LOG = "train-all.json"  # in results/<profile>/: the wall time of the last `train all`


# A bundle cannot be made, read or installed; the message names the file and what to do.
BundleError = TransferError


def source_hashes() -> dict[str, str]:
    """SHA-256 of the normalised source (``codeversion.normalised_source``: comments and docstrings
    cut) of every file behind a number (training and metrics), by path in the package."""
    files = codeversion.source_files(tuple(sorted(set(TRAINING_SOURCES) | set(evaluate.METRIC_SOURCES))))
    return {f.relative_to(codeversion.PACKAGE_DIR).as_posix(): codeversion.file_digest(f) for f in files}


def _raw_hashes() -> dict[str, str]:
    """SHA-256 of the bytes of the same files: what bundles exported before the normalised hashes
    recorded, so that their files compare too."""
    files = codeversion.source_files(tuple(sorted(set(TRAINING_SOURCES) | set(evaluate.METRIC_SOURCES))))
    return {f.relative_to(codeversion.PACKAGE_DIR).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in files}


def shipped_weights(profile: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    """run id -> (the models whose weights the bundle ships, whether its GAN snapshots go too).

    What the chapters draw with: the first yardstick (the evaluation chapter's nearest neighbours
    in its feature space), the first seed's generator of each objective run and of every other GAN
    setting, every seed's generator of the sweep's pick (the first with its snapshots: the training
    strip) and of the AC-GAN (the latent paths' midpoints and the copy test use every seed), the
    first seed's VAE of both latent sizes. Every other number a chapter shows is a cached metric or a history."""
    ev = make_config("evaluation", profile)
    ids = edition.run_ids(profile)
    groups = edition.profile_groups(profile, ev)
    chosen = None
    if any(g["model"] == "gan" and "log_steps" not in g for g in groups.values()):
        judge = evaluate.classifier_run(profile, ev.yardsticks[0], ev.device)
        _, choice = evaluate.gan_sweep(profile, ev, judge)
        chosen = (choice["beta1"], choice["batch_size"])
    out: dict[str, tuple[tuple[str, ...], bool]] = {rid: ((), False) for rs in ids.values() for rid in rs}
    for name, group in groups.items():
        firsts: dict[Any, str] = {}  # the first seed's run of every setting in the group (a sweep group has several)
        members = list(zip(edition.group_members(profile, group, ev), ids[name]))
        for cfg, rid in members:
            firsts.setdefault(getattr(cfg, "beta1", None), rid)
        for beta1, first in firsts.items():
            if name == f"classifier arch={ev.yardsticks[0]}":
                out[first] = (("net",), False)
            elif "beta1s" in group and (beta1, group["batch_size"]) == chosen:
                # the pick's every seed (the midpoints of its latent paths, the copy test), the first with its strip
                for cfg, rid in members:
                    if cfg.beta1 == beta1:
                        out[rid] = (("G",), rid == first)
            elif name == "acgan":  # every seed: the copy test
                for _, rid in members:
                    out[rid] = (("G",), False)
            elif group["model"] in ("acgan", "gan"):  # every other GAN setting's samples are drawn too
                out[first] = (("G",), False)
            elif group["model"] == "vae":
                out[first] = (("vae",), False)
    return out


def export(profile: str, out: Path | None = None, log: Callable[[str], None] = print,
           extra: dict[str, Any] | None = None, made_of: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the bundle of ``profile``'s edition (in ``RESULTS_ROOT``, where the chapters' calls
    look) to ``out`` (default ``editions/<profile>.tar.gz``).

    Every run must be finished, trained here or installed from parts (else BundleError names them
    and the command that trains them); metrics not yet cached are computed first
    (``edition.measure``). ``extra``: more provenance (``parts.assemble``: the parts it was made
    of). ``made_of`` (``parts.assemble``): the edition's parts, ``{"folder": their folder, "parts":
    {group: {"file", "sha256", "runs"}}, "shipped": {run id: {"models", "snapshots"}}}``; the
    bundle then ships no weights of its own but names each part by its SHA-256, and import takes
    every run's weights from its part (the parts are in the repository already: shipping their
    weights twice would double the checkout). Returns a summary."""
    out = Path(out) if out is not None else EDITIONS_DIR / f"{profile}.tar.gz"
    root = results_dir(profile, RESULTS_ROOT)
    ids = edition.run_ids(profile)
    # a follow-up group goes in once it is complete (as a part, where the edition is made of parts);
    # until then the edition holds the others and its chapters say the group is pending
    for name in edition.followup_groups(profile):
        complete = (name in made_of["parts"] if made_of is not None else
                    all((root / "runs" / rid / "manifest.json").is_file() for rid in ids[name]))
        if not complete:
            log(f"bundle: follow-up group {name!r} is not trained yet: the edition goes without it (pending)")
            del ids[name]
    missing = [rid for rs in ids.values() for rid in rs if not (root / "runs" / rid / "manifest.json").is_file()
               or not any((root / "runs" / rid / f).is_file() for f in ("checkpoint.pt", SHIPPED_WEIGHTS))]
    if missing:
        raise BundleError(f"{len(missing)} run(s) of profile {profile!r} are not trained in {root}: "
                          f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; run "
                          f"`mnistgen train all --profile {profile}` first")
    edition.measure(profile, log=log)  # cached ones are read, missing ones computed (no deadline)
    rids = [rid for rs in ids.values() for rid in rs]
    policy = {rid: v for rid, v in shipped_weights(profile).items() if rid in rids}
    files, manifests = run_files(root / "runs", rids, policy, weights=made_of is None)
    shipped = {rid: {"models": list(m), "snapshots": s} for rid, (m, s) in policy.items()}
    meta = {"format": BUNDLE_FORMAT, "profile": profile, "runs": ids, "shipped": shipped,
            "provenance": {**provenance(profile, manifests, root), **(extra or {})}}
    if made_of is not None:
        _check_parts_hold(policy, made_of["shipped"])
        folder = Path(os.path.relpath(Path(made_of["folder"]).resolve(), out.parent.resolve())).as_posix()
        if not schemas.NAME.fullmatch(folder):  # import reads it as one name beside the bundle, nothing else
            raise BundleError(f"the parts ({made_of['folder']}) must lie in a folder beside the bundle {out}")
        meta["shipped"] = {rid: made_of["shipped"][rid] for rid in rids}  # what import installs: the parts' weights
        meta["parts"] = {"folder": folder, "files": made_of["parts"]}
    files[BUNDLE_FILE] = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
    files[SUMS] = "".join(f"{hashlib.sha256(b).hexdigest()}  {name}\n" for name, b in sorted(files.items())).encode()
    atomic_write_bytes(out, lambda f: _write_tar(f, files))
    out.chmod(0o644)  # a file to commit and share (the temporary file it was written as is private)
    size = out.stat().st_size
    log(f"bundle: {out} ({size / 2**20:.2f} MiB, {sum(len(r) for r in ids.values())} runs, {len(files)} files)")
    return {"path": str(out), "bytes": size, "runs": sum(len(r) for r in ids.values()), "files": len(files)}


def run_files(runs_root: Path, rids: list[str], policy: dict[str, tuple[tuple[str, ...], bool]],
              weights: bool = True) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """The members a bundle (or a part) holds for the finished runs ``rids``: each run's manifest,
    history and cached metrics, and (``weights``) the weights ``policy`` says it ships; with the manifests."""
    files: dict[str, bytes] = {}
    manifests = []
    for rid in rids:
        d = runs_root / rid
        for f in sorted(d.iterdir()):
            if f.name in ("manifest.json", "history.json") or (f.name.startswith(METRIC_CACHES) and f.suffix == ".json"):
                files[f"runs/{rid}/{f.name}"] = f.read_bytes()
        if weights:
            models, snapshots = policy[rid]
            files[f"runs/{rid}/{SHIPPED_WEIGHTS}"] = shipped_bytes(_weights_source(d, models, snapshots), models, snapshots)
        manifests.append(json.loads((d / "manifest.json").read_text()))
    return files, manifests


def _weights_source(run: Path, models: tuple[str, ...], snapshots: bool) -> dict[str, Any]:
    """The payload a run's shipped weights are cut from: its checkpoint where it was trained here,
    else the ``weights.pt`` a part installed (an edition assembled from parts), which must hold
    every model (and the snapshots) asked for: a smaller bundle is cut from a larger part."""
    if (run / "checkpoint.pt").is_file():
        return read_checkpoint(run / "checkpoint.pt")
    if not (run / SHIPPED_WEIGHTS).is_file():
        raise BundleError(f"run {run.name} has neither a checkpoint nor shipped weights in {run.parent}")
    payload = read_checkpoint(run / SHIPPED_WEIGHTS)
    lacking = sorted(set(models) - set(payload["state"]["models"]))
    if snapshots and not payload["state"]["snapshots"]:
        lacking.append("its snapshots")
    if lacking:
        raise BundleError(f"run {run.name} was installed without {', '.join(lacking)}, which the bundle ships: "
                          "its part did not carry them; retrain its group here, then export again")
    return payload


def _check_parts_hold(needed: dict[str, tuple[tuple[str, ...], bool]], shipped: dict[str, dict[str, Any]]) -> None:
    """An edition made of parts draws with its parts' weights: every model (and snapshot strip) the
    chapters need must be in them, else BundleError names the run and what its part lacks."""
    for rid, (models, snapshots) in sorted(needed.items()):
        have = shipped.get(rid, {"models": [], "snapshots": False})
        lacking = sorted(set(models) - set(have["models"])) + (["its snapshots"] if snapshots and not have["snapshots"] else [])
        if lacking:
            raise BundleError(f"run {rid}'s part ships without {', '.join(lacking)}, which the chapters draw with: "
                              "export its group's part again from a machine that trained it")


def _weights_from_parts(path: Path, meta: BundleMeta, runs_dir: Path, tmp: Path) -> None:
    """Put each run's weights into the staged bundle ``runs_dir`` from its part: the parts lie in
    ``meta.parts.folder`` beside the bundle at ``path``, each verified against the SHA-256 the
    bundle records for it (and its members against the part's own sums and schemas)."""
    assert meta.parts is not None
    folder = inside(path.parent, meta.parts.folder)
    for name, entry in sorted(meta.parts.files.items()):
        into = inside(tmp, entry.file)
        unpack_verified(inside(folder, entry.file), into, "part", entry.sha256, f"{path}'s {BUNDLE_FILE}",
                        meta_file=PART_FILE)
        part = schemas.read_json(into / PART_FILE, schemas.PartMeta, f"part {entry.file}: {PART_FILE}")
        if part.group != name or part.runs != entry.runs or part.profile != meta.profile:
            raise BundleError(f"part {entry.file} holds group {part.group!r} of profile {part.profile!r} with other "
                              f"runs than {path} names for group {name!r}; nothing was installed")
        check_runs(into / "runs", entry.runs, meta.profile, f"part {entry.file}")
        for rid in entry.runs:
            weights = into / "runs" / rid / SHIPPED_WEIGHTS
            if not (runs_dir / rid).is_dir() or not weights.is_file():
                raise BundleError(f"part {entry.file} (group {name!r}) and {path} disagree on run {rid}; "
                                  "nothing was installed")
            weights.rename(runs_dir / rid / SHIPPED_WEIGHTS)


def _parts_unchanged(path: Path, installed: dict[str, Any]) -> bool:
    """Whether the parts an installed bundle was made of still have the SHA-256 it records."""
    if not installed.get("parts"):
        return True
    try:
        parts = PartsOfBundle.model_validate(installed["parts"])
        folder = inside(path.parent, parts.folder)
        return all(inside(folder, e.file).is_file() and file_sha256(folder / e.file) == e.sha256
                   for e in parts.files.values())
    except (ValueError, OSError):  # SchemaError, pydantic's ValidationError: not ours to trust
        return False


def provenance(profile: str, manifests: list[dict[str, Any]], root: Path) -> dict[str, Any]:
    """Where, when and by which code the edition's numbers were made."""
    def one(values: set[str]) -> str:
        return next(iter(values)) if len(values) == 1 else " / ".join(sorted(values))

    train_log = root / TRAIN_LOG
    return {
        "device": one({m["device"] for m in manifests}), "device_name": one({m["device_name"] for m in manifests}),
        "versions": manifests[0]["versions"], "trained_at_commits": sorted({m["git_commit"] for m in manifests}),
        "git_commit": git_commit(), "code_version": code_version(),
        "metric_code_version": code_version(evaluate.METRIC_SOURCES), "sources": source_hashes(),
        "profile_settings": (PROFILES_DIR / f"{profile}.yml").read_text(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "exported_with": environment(),
        "first_run_finished": min(m["finished"] for m in manifests),
        "last_run_finished": max(m["finished"] for m in manifests),
        "training_seconds_sum": round(sum(m["wall_seconds"] for m in manifests), 1),
        "machine": machine.merge([machine.from_manifest(m) for m in manifests]),
        "train_all": json.loads(train_log.read_text()) if train_log.is_file() else None,
    }


def _write_tar(f: Any, files: dict[str, bytes]) -> None:
    with tarfile.open(fileobj=f, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=9) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o644, "", ""
            tar.addfile(info, io.BytesIO(data))


def _read_verified(path: Path, into: Path) -> BundleMeta:
    """Unpack ``path`` into ``into``, every member checked against SHA256SUMS, and its metadata
    against the schemas: bundle.json, as the typed object the rest of the import trusts."""
    unpack_verified(path, into, "bundle", meta_file=BUNDLE_FILE)
    raw = schemas.read_json(into / BUNDLE_FILE, schemas.TypeAdapter(dict[str, Any]), f"{path}: {BUNDLE_FILE}")
    if raw.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is a bundle of format {str(raw.get('format'))[:20]}, this code reads format "
                          f"{BUNDLE_FORMAT}")
    meta = schemas.read_json(into / BUNDLE_FILE, BundleMeta, f"{path}: {BUNDLE_FILE}")
    check_runs(into / "runs", meta.run_ids, meta.profile, str(path))
    return meta


def code_changes(profile: str, provenance: Provenance) -> list[str]:
    """How the checkout differs from the code and settings that made an archive: one line each.

    A file is the same where the archive's hash is that of its code (normalised) or of its bytes
    (what archives exported before the normalisation recorded): a file whose code is the archive's
    but whose comments differ is named only against an archive of the second kind."""
    theirs, ours, raw = provenance.sources, source_hashes(), _raw_hashes()
    lines = [f"src/mnistgen/{f}: {'changed' if f in theirs and f in ours else 'only in the bundle' if f in theirs else 'new here'}"
             for f in sorted(set(theirs) | set(ours)) if theirs.get(f) not in (ours.get(f), raw.get(f), None)
             or (f in ours) != (f in theirs)]
    if provenance.profile_settings != (PROFILES_DIR / f"{profile}.yml").read_text():
        lines.append(f"profiles/{profile}.yml: changed")
    return lines


def _same_code(profile: str, runs: dict[str, list[str]], code: str, metric_code: str) -> bool:
    """Whether this checkout computes an edition's numbers: the same run ids (follow-up groups not
    shipped yet aside: ``edition.held_groups``), and the training and metric code versions it claims
    are this checkout's (a claim no run id backs is not believed)."""
    return (edition.held_groups(profile, runs) is not None and code == code_version()
            and metric_code == code_version(evaluate.METRIC_SOURCES))


def checkout_code() -> list[str]:
    """This checkout's training and metric code versions: what an installed bundle was checked against."""
    return [code_version(), code_version(evaluate.METRIC_SOURCES)]


def _installed_same(installed: dict[str, Any], digest: str, path: Path) -> bool:
    """Whether an installed bundle.json (this machine's own record) is this archive, installed for
    the code this checkout has now: after the code changes (or changes back) it is installed again,
    so whether its pages say "other code" follows the tree."""
    try:
        Provenance.model_validate(installed["provenance"])
        return (installed.get("archive_sha256") == digest and installed.get("checkout_code") == checkout_code()
                and _parts_unchanged(path, installed))
    except (KeyError, TypeError, ValueError, SchemaError):
        return False


def import_bundle(path: Path, results_root: Path = RESULTS_ROOT, other_code: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Verify the bundle at ``path`` and install it into ``results/<profile>``; returns bundle.json.

    Nothing is written to ``results/<profile>`` unless every member verified, every metadata file
    passed its schema and the bundle is this code's edition (or ``other_code``); runs of the same id
    installed before are replaced, runs trained here never (``transfer._install_runs``)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"no bundle at {path}")
    digest = file_sha256(path)
    results_root = Path(results_root)
    for done in results_root.glob(f"*/{BUNDLE_FILE}"):  # this very archive installed for this code: done
        try:
            installed = json.loads(done.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(installed, dict) and _installed_same(installed, digest, path):
            log(f"bundle: {path} is installed in {done.parent} already")
            return installed
    results_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=results_root, prefix=".bundle-import-") as tmp:
        staged = Path(tmp) / "bundle"
        try:
            meta = _read_verified(path, staged)
            if meta.parts is not None:  # an edition assembled from parts: the weights are theirs
                _weights_from_parts(path, meta, staged / "runs", Path(tmp) / "parts")
            dest = inside(results_root, meta.profile)
        except SchemaError as e:
            raise BundleError(f"{e} (nothing was installed)") from None
        profile, prov = meta.profile, meta.provenance
        ours = edition.run_ids(profile)
        same = _same_code(profile, meta.runs, prov.code_version, prov.metric_code_version)
        aliases: dict[str, str] = {}
        changes: list[str] = []
        if not same:
            changes = code_changes(profile, prov) or [
                "the groups of runs the profile trains" if ours != meta.runs else
                f"the code version it claims ({prov.code_version}, metric code {prov.metric_code_version}) is not "
                "this checkout's, though its run ids are"]
            if not other_code:
                raise BundleError(
                    f"{path} was made by other code than this checkout's (it states code {prov.code_version}, "
                    f"commit {prov.git_commit}; here {code_version()}): "
                    + "; ".join(changes) + f". Its numbers are not what this code computes. Retrain the edition: "
                    f"`mnistgen train all --profile {profile}` then `mnistgen bundle export --profile {profile}` "
                    "(the paper profile on a GPU: benchmarks/paper_edition.sh), or install it anyway with "
                    "--other-code (every page then names the code its numbers come from)")
            for group, rs in ours.items():
                for mine, theirs in zip(rs, meta.runs.get(group, [])):
                    if mine != theirs:
                        aliases[mine] = theirs
        kept = _install_runs(staged / "runs", dest / "runs", Path(tmp), log=log)
        installed = {**meta.model_dump(mode="json", exclude_none=True), "source": str(path.resolve()),
                     "archive_sha256": digest, "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "other_code": not same, "changes": changes, "checkout_code": checkout_code(),
                     "aliases": aliases, "kept_local": kept}
        atomic_write_json(dest / BUNDLE_FILE, installed)
    n = len(meta.run_ids)
    log(f"bundle: installed {n} runs of profile {profile!r} into {dest}")
    if not same:
        log(f"bundle: {path.name} was made by training code {prov.code_version}, this checkout's is {code_version()} "
            f"({'; '.join(changes)}): every page says so. Retrain it with `mnistgen train all --profile {profile}`, "
            "or build the book from this code's own runs with `make book PROFILE=quick`")
    return installed
