"""Runs as data: finished run folders packed into plain values, verified and installed elsewhere.

A results bundle (``bundle.py``), a part (``parts.py``) and a run trained on a Dask worker that
shares no disk with the client (``edition.train_profile``) travel the same way: every file with
its SHA-256, staged in a folder beside the destination, and each run folder renamed into place
whole only after every file verified, so a damaged transfer leaves nothing half-written.

Everything that arrives is hostile until checked (``schemas.py``): member names against one
allow-list (``runs/<run id>/<a run's file>`` and the archive's own metadata), sizes and counts
against the limits below while the archive is read, every metadata file against its schema, and
only the runs the archive lists. Installing never loses local training: a run folder here that
holds a ``checkpoint.pt`` is kept when it is finished (the same id is the same training) and moved
to ``backup/`` beside ``runs/`` when it is not, with a line that names the folder.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import schemas
from .schemas import CACHE_FILE, RUN_ID, SchemaError, check_run_id

SUMS = "SHA256SUMS"
PART_FILE = "part.json"  # a part's own metadata (parts.py), as bundle.json is a bundle's
METRIC_CACHES = ("metrics-", "nll-", "real-", "units-", "nn-")  # evaluate.py's cache files, by prefix
RUN_FILES = ("checkpoint.pt", "manifest.json", "history.json")  # a finished run, resumable

# Limits on what an archive may unpack to, checked from each member's header before its data is
# read. Measured on the paper edition (2026-12-06): 238 members in its bundle, at most 32 in a
# part; the largest member a GAN generator with its snapshots (3.5 MiB), the largest metadata
# file a 300-epoch history (109 KiB, ``schemas.MAX_JSON_BYTES``); 88 MiB unpacked in all.
MAX_MEMBERS = 5000
MAX_MEMBER_BYTES = 256 * 2**20
MAX_TOTAL_BYTES = 2 * 2**30
CHUNK = 2**20


class TransferError(RuntimeError):
    """Runs or a bundle cannot be read, verified or installed; the message names the file."""


class _BoundedInfo(tarfile.TarInfo):
    """tarfile reads a long-name or PAX header whole into memory before the member it describes
    reaches us: refuse one over a mebibyte (a real one is a few hundred bytes)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                         tarfile.GNUTYPE_LONGLINK) and self.size > 2**20:
            raise tarfile.HeaderError(f"an extended header of {self.size} bytes")
        return super()._proc_member(tarfile_)


def _member_kind(name: str, meta_file: str) -> str | None:
    """What an archive member is by its name, or None if no member may have it."""
    if name in (SUMS, meta_file):
        return name
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "runs" and RUN_ID.fullmatch(parts[1]):
        if parts[2] in ("manifest.json", "history.json", "weights.pt") or CACHE_FILE.fullmatch(parts[2]):
            return parts[2]
    return None


def _copy_hashed(src: Any, dst: Path, limit: int, origin: str) -> str:
    """Stream ``src`` into a new file ``dst`` (never an existing one) in chunks; its SHA-256."""
    h = hashlib.sha256()
    n = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "xb") as out:
        while chunk := src.read(CHUNK):
            n += len(chunk)
            if n > limit:
                raise TransferError(f"{origin}: {dst.name} is larger than its header says; refused")
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def _parse_sums(data: bytes, origin: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines():
        sha, sep, name = line.partition("  ")
        if not sep or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha) or name in sums:
            raise TransferError(f"{origin}: {SUMS} has a malformed or repeated line {line[:100]!r}; refused")
        sums[name] = sha
    return sums


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def unpack_verified(path: Path, into: Path, what: str, digest: str | None = None, digest_from: str = "",
                    meta_file: str = "bundle.json") -> None:
    """Unpack the archive at ``path`` (a ``what``: bundle or part) into the new folder ``into``,
    streamed member by member, every member checked against the archive's SHA256SUMS; ``digest``:
    the SHA-256 the whole archive must have (a part's, as ``digest_from`` records it).
    TransferError names the member and what is wrong: a flipped byte, a member missing, one not
    listed, one whose name no run file has, a link, a sparse or device file, a size over the
    limits, a cut. ``into`` is left to the caller to remove (a temporary folder)."""
    if not path.is_file():
        raise TransferError(f"{what} {path} is missing" + (f" (listed in {digest_from})" if digest_from else ""))
    if path.stat().st_size > MAX_TOTAL_BYTES:
        raise TransferError(f"{what} {path} is larger than {MAX_TOTAL_BYTES >> 20} MiB; refused")
    if digest is not None and file_sha256(path) != digest:
        raise TransferError(f"{what} {path} does not match its SHA-256 in {digest_from} (damaged, truncated or "
                            "replaced); nothing was installed")
    into.mkdir(parents=True)
    got: dict[str, str] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:gz", tarinfo=_BoundedInfo) as tar:
            for count, m in enumerate(tar, 1):
                if count > MAX_MEMBERS:
                    raise TransferError(f"{path}: more than {MAX_MEMBERS} members; refused")
                if not m.isreg() or m.issparse() or _member_kind(m.name, meta_file) is None:
                    kind = "sparse file" if m.issparse() else "plain file" if m.isreg() else "link or special file"
                    raise TransferError(f"{path}: member {m.name[:120]!r} ({kind}) is not a file a mnistgen {what} "
                                        f"holds (runs/<run id>/<manifest, history, weights or cached metrics>, "
                                        f"{meta_file}, {SUMS}); refused")
                if m.name in got:
                    raise TransferError(f"{path}: member {m.name!r} appears twice; refused")
                limit = schemas.MAX_JSON_BYTES if m.name.endswith(".json") or m.name == SUMS else MAX_MEMBER_BYTES
                total += m.size
                if m.size > limit or total > MAX_TOTAL_BYTES:
                    raise TransferError(f"{path}: member {m.name!r} ({m.size} bytes) goes over the limits "
                                        f"({limit} bytes a member, {MAX_TOTAL_BYTES} in all); refused")
                got[m.name] = _copy_hashed(tar.extractfile(m), into / m.name, limit, str(path))
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as e:
        raise TransferError(f"{path} is truncated or damaged ({type(e).__name__}: {e}); nothing was installed") from None
    for needed in (SUMS, meta_file):
        if needed not in got:
            raise TransferError(f"{path} has no {needed}: not a mnistgen {what}, or cut short")
    try:
        sums = _parse_sums((into / SUMS).read_bytes(), str(path))
    except UnicodeDecodeError:
        raise TransferError(f"{path}: {SUMS} is not text; refused") from None
    for name in sorted(set(sums) - set(got)):
        raise TransferError(f"{path}: {name} is listed in {SUMS} but missing from the {what} (truncated?)")
    for name, sha in sorted(got.items()):
        if name == SUMS:
            continue
        if name not in sums:
            raise TransferError(f"{path}: {name} is in the {what} but not in {SUMS}; refused")
        if sha != sums[name]:
            raise TransferError(f"{path}: {name} does not match its SHA-256 in {SUMS} (corrupt or altered); "
                                "nothing was installed")


def check_runs(staged: Path, rids: list[str], profile: str, origin: str) -> None:
    """The staged run folders must be exactly ``rids``, each with a manifest (of that run and
    ``profile``), a history and cached metrics that pass their schemas; TransferError otherwise."""
    here = sorted(p.name for p in staged.iterdir()) if staged.is_dir() else []
    extra, missing = sorted(set(here) - set(rids)), sorted(set(rids) - set(here))
    if extra or missing:
        raise TransferError(f"{origin}: its run folders are not the runs it lists"
                            + (f"; not listed: {', '.join(extra[:3])}" if extra else "")
                            + (f"; listed but absent: {', '.join(missing[:3])}" if missing else "") + "; refused")
    try:
        for rid in rids:
            d = staged / rid
            for f in sorted(d.iterdir()):
                model = (schemas.Manifest if f.name == "manifest.json" else schemas.History if f.name == "history.json"
                         else schemas.CachedMetrics if f.name.endswith(".json") else None)
                if model is not None:
                    value = schemas.read_json(f, model, f"{origin}: runs/{rid}/{f.name}")
                    if f.name == "manifest.json" and (value.run_id != rid or value.profile != profile):
                        raise SchemaError(f"{origin}: runs/{rid}/manifest.json is of run {value.run_id!r}, profile "
                                          f"{value.profile!r}; refused")
            for f in ("manifest.json", "history.json"):
                if not (d / f).is_file():
                    raise SchemaError(f"{origin}: run {rid} has no {f}; refused")
    except SchemaError as e:
        raise TransferError(str(e)) from None


def _install_runs(staged: Path, dest: Path, trash: Path, replace: bool = True,
                  log: Callable[[str], None] = print) -> list[str]:
    """Move every run folder of ``staged`` (verified) into ``dest``. A folder of the same id here
    that holds local training (``checkpoint.pt``) is never lost: finished, it is kept (the same id
    is the same training); unfinished, it is moved to ``backup/`` beside ``dest``, named in a log
    line. Any other folder of that id (installed before) is replaced, unless ``replace=False`` and
    it is finished. Returns the ids kept."""
    dest.mkdir(parents=True, exist_ok=True)
    kept: list[str] = []
    for run in sorted(staged.iterdir()):
        check_run_id(run.name)
        target = dest / run.name
        if (target / "checkpoint.pt").is_file():
            if (target / "manifest.json").is_file():
                kept.append(run.name)
                continue
            backup = dest.parent / "backup" / f"{run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(target), str(backup))
            log(f"run {run.name} was unfinished here; its checkpoint is kept in {backup}")
        elif not replace and (target / "manifest.json").is_file():
            continue
        elif target.exists():
            shutil.move(str(target), str(trash / f"replaced-{run.name}"))
        run.rename(target)
    if kept:
        log(f"kept {len(kept)} run(s) trained here in place of the archive's (the same ids: the same training): "
            + ", ".join(kept[:4]) + (" ..." if len(kept) > 4 else ""))
    return kept


def pack_runs(root: Path, rids: list[str]) -> dict[str, Any]:
    """Finished runs of ``root/runs`` as plain data to send over the wire (a Dask task's result):
    every file a local training leaves (the full checkpoint: the run stays resumable and bitwise
    what was trained) and its cached metrics, with their SHA-256 (``install_runs`` checks them)."""
    files = {}
    for rid in rids:
        d = root / "runs" / rid
        if (d / "manifest.json").is_file():
            for f in sorted(d.iterdir()):
                if f.name in RUN_FILES or (f.name.startswith(METRIC_CACHES) and f.suffix == ".json"):
                    files[f"{rid}/{f.name}"] = f.read_bytes()
    return {"files": files, "sums": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}}


def install_runs(packed: dict[str, Any], root: Path, origin: str, profile: str | None = None) -> list[str]:
    """Verify the runs of ``pack_runs`` and install them into ``root/runs`` (each run folder renamed
    into place whole; nothing is written unless every file verified and every manifest, history
    and cached metric passed its schema; a finished run already there is kept: another process
    may be reading it). ``profile``: the profile their manifests must name (default: the name of
    ``root``, ``results/<profile>``). Returns the run ids."""
    if not isinstance(packed, dict) or not isinstance(packed.get("files"), dict) or not isinstance(packed.get("sums"), dict):
        raise TransferError(f"{origin}: not packed runs; refused")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".runs-arriving-") as tmp:
        staged = Path(tmp) / "runs"
        staged.mkdir()
        for name in sorted(set(packed["sums"]) - set(packed["files"])):
            raise TransferError(f"{origin}: {name} was announced but not sent; nothing was installed")
        for name, data in sorted(packed["files"].items()):
            rid, _, file = str(name).partition("/")
            if not RUN_ID.fullmatch(rid) or not (file in RUN_FILES or CACHE_FILE.fullmatch(file)):
                raise TransferError(f"{origin}: {str(name)[:120]!r} is not a file of a run folder; refused")
            if name not in packed["sums"]:
                raise TransferError(f"{origin}: {name} has no SHA-256 in the list sent with it; nothing was installed")
            if not isinstance(data, bytes) or hashlib.sha256(data).hexdigest() != packed["sums"][name]:
                raise TransferError(f"{origin}: {name} does not match its SHA-256 in {SUMS} (corrupt or altered); "
                                    "nothing was installed")
            (staged / rid).mkdir(exist_ok=True)
            (staged / rid / file).write_bytes(data)
        rids = sorted(p.name for p in staged.iterdir())
        check_runs(staged, rids, profile or root.name, origin)
        _install_runs(staged, root / "runs", Path(tmp), replace=False)
    return rids
