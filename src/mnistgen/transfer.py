"""Runs as data: finished run folders packed into plain values, verified and installed elsewhere.

A results bundle (``bundle.py``) and a run trained on a Dask worker that shares no disk with
the client (``edition.train_profile``) travel the same way: every file with its SHA-256, staged
in a folder beside the destination, and each run folder renamed into place whole only after
every file verified, so a damaged transfer leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import shutil
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


