"""Runs as data: finished run folders packed into plain values, verified and installed elsewhere.

A results bundle (``bundle.py``) and a run trained on a Dask worker that shares no disk with
the client (``edition.train_profile``) travel the same way: every file with its SHA-256, staged
in a folder beside the destination, and each run folder renamed into place whole only after
every file verified, so a damaged transfer leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

SUMS = "SHA256SUMS"
METRIC_CACHES = ("metrics-", "nll-", "real-", "units-", "nn-")  # evaluate.py's cache files, by prefix
RUN_FILES = ("checkpoint.pt", "manifest.json", "history.json")  # a finished run, resumable


class TransferError(RuntimeError):
    """Runs or a bundle cannot be read, verified or installed; the message names the file."""


def _stage(into: Path, name: str, data: bytes, digest: str, origin: str) -> None:
    """Write one verified member under ``into``, or TransferError naming it."""
    if hashlib.sha256(data).hexdigest() != digest:
        raise TransferError(f"{origin}: {name} does not match its SHA-256 in {SUMS} (corrupt or altered); "
                          "nothing was installed")
    dst = into / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)


def _install_runs(staged: Path, dest: Path, trash: Path, replace: bool = True) -> None:
    """Move every run folder of ``staged`` (verified) into ``dest``, replacing one of the same id
    (``replace=False``: keeping one that is finished: the same id is the same training)."""
    dest.mkdir(parents=True, exist_ok=True)
    for run in sorted(staged.iterdir()):
        target = dest / run.name
        if not replace and (target / "manifest.json").is_file():
            continue
        if target.exists():
            shutil.move(str(target), str(trash / f"replaced-{run.name}"))
        run.rename(target)


def unpack_verified(path: Path, into: Path, what: str, digest: str | None = None, digest_from: str = "") -> None:
    """Unpack the archive at ``path`` (a ``what``: bundle or part) into ``into``, every member
    checked against the archive's SHA256SUMS; ``digest``: the SHA-256 the whole archive must have
    (a part's, as ``digest_from`` records it). TransferError names the member and what is wrong:
    a flipped byte, a member missing, one not listed, one that is not a plain file inside, a cut."""
    if not path.is_file():
        raise TransferError(f"{what} {path} is missing" + (f" (listed in {digest_from})" if digest_from else ""))
    blob = path.read_bytes()
    if digest is not None and hashlib.sha256(blob).hexdigest() != digest:
        raise TransferError(f"{what} {path} does not match its SHA-256 in {digest_from} (damaged, truncated or "
                            "replaced); nothing was installed")
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            for m in members:
                if not m.isfile() or m.name.startswith("/") or ".." in Path(m.name).parts:
                    raise TransferError(f"{path}: member {m.name!r} is not a plain file inside the {what}; refused")
            if SUMS not in names:
                raise TransferError(f"{path} has no {SUMS}: not a mnistgen {what}, or cut short")
            sums = {}
            for line in tar.extractfile(SUMS).read().decode().splitlines():
                sha, _, name = line.partition("  ")
                sums[name] = sha
            for name in sorted(set(sums) - set(names)):
                raise TransferError(f"{path}: {name} is listed in {SUMS} but missing from the {what} (truncated?)")
            for m in members:
                if m.name == SUMS:
                    continue
                if m.name not in sums:
                    raise TransferError(f"{path}: {m.name} is in the {what} but not in {SUMS}; refused")
                _stage(into, m.name, tar.extractfile(m).read(), sums[m.name], str(path))
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as e:
        raise TransferError(f"{path} is truncated or damaged ({type(e).__name__}: {e}); nothing was installed") from None


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


def install_runs(packed: dict[str, Any], root: Path, origin: str) -> list[str]:
    """Verify the runs of ``pack_runs`` and install them into ``root/runs`` (each run folder renamed
    into place whole; nothing is written unless every file verified; a finished run already there
    is kept: another process may be reading it). Returns the run ids."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".runs-arriving-") as tmp:
        staged = Path(tmp) / "runs"
        staged.mkdir()
        for name in sorted(set(packed["sums"]) - set(packed["files"])):
            raise TransferError(f"{origin}: {name} was announced but not sent; nothing was installed")
        for name, data in sorted(packed["files"].items()):
            if ".." in Path(name).parts or name.startswith("/") or len(Path(name).parts) != 2:
                raise TransferError(f"{origin}: {name!r} is not a file of a run folder; refused")
            _stage(staged, name, data, packed["sums"].get(name, ""), origin)
        rids = sorted(p.name for p in staged.iterdir())
        _install_runs(staged, root / "runs", Path(tmp), replace=False)
    return rids


