"""A hostile or damaged edition is refused with the project's own error, before anything is written:
nothing outside its folder, no script into the pages, no local training lost, no traceback.

Each test builds a tiny edition of the smoke profile by hand (its real run ids, schemas and sums;
placeholder weights, which import does not load) and breaks one thing the way an attacker would.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from mnistgen import bundle, edition, evaluate, parts, runs, schemas, transfer
from mnistgen.config import PROFILES_DIR
from mnistgen.runs import code_version
from mnistgen.transfer import SUMS, TransferError

PROFILE = "smoke"


def _manifest(rid: str) -> dict[str, Any]:
    model, seed = rid.split("-")[0], int(rid.split("-")[1][4:])
    return {"run_id": rid, "status": "complete", "model": model, "profile": PROFILE, "config": {"seed": seed},
            "seed": seed, "code_version": code_version(), "git_commit": "0123abcd", "device": "cpu",
            "device_name": "x86_64 CPU, 2 torch threads", "versions": {"torch": "2.14.1"}, "epochs": 1,
            "trained_with_seeds": [seed], "wall_seconds": 1.5, "session_seconds": 2.0,
            "final": {"epoch": 1, "loss": 1.0}, "finished": "2026-12-06T00:00:00+0000"}


def _provenance() -> dict[str, Any]:
    return {"device": "cpu", "device_name": "x86_64 CPU, 2 torch threads", "versions": {"torch": "2.14.1"},
            "trained_at_commits": ["0123abcd"], "git_commit": "0123abcd", "code_version": code_version(),
            "metric_code_version": code_version(evaluate.METRIC_SOURCES), "sources": bundle.source_hashes(),
            "profile_settings": (PROFILES_DIR / f"{PROFILE}.yml").read_text(), "created": "2026-12-06T00:00:00+0000",
            "exported_with": {"torch": "2.14.1"}, "first_run_finished": "2026-12-06", "last_run_finished": "2026-12-06",
            "training_seconds_sum": 10.0, "train_all": None}


def run_members(rid: str, weights: bool = True) -> dict[str, bytes]:
    out = {f"runs/{rid}/manifest.json": json.dumps(_manifest(rid)).encode(),
           f"runs/{rid}/history.json": json.dumps([{"epoch": 1, "seconds": 1.5, "loss": 1.0}]).encode(),
           f"runs/{rid}/metrics-0123456789.json": json.dumps({"fid": 3.0, "n_samples": 100}).encode()}
    if weights:
        out[f"runs/{rid}/{runs.SHIPPED_WEIGHTS}"] = b"weights of " + rid.encode()
    return out


def with_sums(files: dict[str, bytes]) -> dict[str, bytes]:
    files = {k: v for k, v in files.items() if k != SUMS}
    files[SUMS] = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in sorted(files.items())).encode()
    return files


def write_tar(files: dict[str, bytes], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        bundle._write_tar(f, files)
    return path


def bundle_files(meta_changes: dict[str, Any] | None = None) -> dict[str, bytes]:
    """A whole bundle (weights inside) of the smoke edition, as members."""
    ids = edition.run_ids(PROFILE)
    rids = [r for rs in ids.values() for r in rs]
    meta = {"format": 1, "profile": PROFILE, "runs": ids, "provenance": _provenance(),
            "shipped": {r: {"models": [], "snapshots": False} for r in rids}, **(meta_changes or {})}
    files = {"bundle.json": json.dumps(meta).encode()}
    for r in rids:
        files.update(run_members(r))
    return with_sums(files)


def parted_edition(root: Path) -> Path:
    """The smoke edition as parts (``root/smoke/*.tar.gz`` and ``parts.json``) and the bundle that
    names them (``root/smoke.tar.gz``, no weights of its own); returns the bundle's path."""
    ids = edition.run_ids(PROFILE)
    rids = [r for rs in ids.values() for r in rs]
    record: dict[str, Any] = {"profile": PROFILE, "format": 1, "code_version": code_version(), "parts": {}}
    refs = {}
    for group, rs in ids.items():
        files = {"part.json": json.dumps({"format": 1, "profile": PROFILE, "group": group, "runs": rs,
                                          "shipped": {r: {"models": [], "snapshots": False} for r in rs},
                                          "provenance": _provenance()}).encode()}
        for r in rs:
            files.update(run_members(r))
        path = write_tar(with_sums(files), root / PROFILE / parts.part_name(group))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        refs[group] = {"file": path.name, "sha256": sha, "runs": rs}
        record["parts"][group] = {**refs[group], "bytes": path.stat().st_size, "exported": "2026-12-06",
                                  "training_wall_seconds": 1.0, "device_name": "x86_64 CPU, 2 torch threads"}
    (root / PROFILE / parts.PARTS_FILE).write_text(json.dumps(record))
    meta = {"format": 1, "profile": PROFILE, "runs": ids, "provenance": _provenance(),
            "shipped": {r: {"models": [], "snapshots": False} for r in rids},
            "parts": {"folder": PROFILE, "files": refs}}
    files = {"bundle.json": json.dumps(meta).encode()}
    for r in rids:
        files.update(run_members(r, weights=False))
    return write_tar(with_sums(files), root / f"{PROFILE}.tar.gz")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (what must not change outside the results folder)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def sandbox(tmp_path):
    """A folder holding the results folder and a bystander file beside it."""
    (tmp_path / "bystander.txt").write_text("mine")
    (tmp_path / "results").mkdir()
    return tmp_path


def refused(path: Path, sandbox: Path, match: str, **kw: Any) -> None:
    before = snapshot(sandbox)
    with pytest.raises(TransferError, match=match):
        bundle.import_bundle(path, sandbox / "results", log=lambda _: None, **kw)
    assert snapshot(sandbox) == before  # nothing written anywhere


def test_the_tiny_edition_installs(sandbox):
    bundle.import_bundle(write_tar(bundle_files(), sandbox / "in" / "b.tar.gz"), sandbox / "results", log=lambda _: None)
    installed = snapshot(sandbox / "results" / PROFILE / "runs")
    assert len(installed) == 4 * sum(len(r) for r in edition.run_ids(PROFILE).values())
    bundle.import_bundle(parted_edition(sandbox / "editions"), sandbox / "results2", log=lambda _: None)
    assert snapshot(sandbox / "results2" / PROFILE / "runs") == installed


# 1. One rule for names, one for paths ------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("folder", "../../outside"), ("folder", "/tmp"), ("file", "../../../bystander.txt"),
                                         ("file", "/etc/passwd"), ("file", "a/b.tar.gz")])
def test_a_part_named_as_a_path_is_refused_and_nothing_is_written(sandbox, field, value):
    path = parted_edition(sandbox / "editions")
    files = {}
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}
    meta = json.loads(files["bundle.json"])
    if field == "folder":
        meta["parts"]["folder"] = value
    else:
        meta["parts"]["files"]["vae"]["file"] = value
    files["bundle.json"] = json.dumps(meta).encode()
    write_tar(with_sums(files), path)
    refused(path, sandbox, r"parts\.(folder|files\.vae\.file)")


def test_a_part_entry_that_climbs_out_plants_nothing(sandbox):
    """The attack as it was made: a part entry ``../../../Z/vae.tar.gz`` that finds a genuine part
    where it points, and whose unpacking folder (the same name joined to the import's scratch
    folder) lies outside the results folder."""
    path = parted_edition(sandbox / "q" / "r" / "editions")
    real = sandbox / "q" / "r" / "editions" / PROFILE / parts.part_name("vae")
    (sandbox / "q" / "Z").mkdir()
    shutil.copy(real, sandbox / "q" / "Z" / real.name)
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}
    meta = json.loads(files["bundle.json"])
    meta["parts"]["files"]["vae"]["file"] = f"../../../Z/{real.name}"
    write_tar(with_sums({**files, "bundle.json": json.dumps(meta).encode()}), path)
    refused(path, sandbox, r"parts\.files\.vae\.file")
    assert not (sandbox / "Z").exists()


@pytest.mark.parametrize("profile", ["../profiles/smoke", str(PROFILES_DIR / "smoke"), "nosuchprofile"])
def test_a_profile_that_is_not_one_of_ours_is_refused(sandbox, profile):
    refused(write_tar(bundle_files({"profile": profile}), sandbox / "in" / "b.tar.gz"), sandbox, "profile")


def test_a_folder_import_checks_the_folder_and_its_record(sandbox, tmp_path):
    root = sandbox / "editions"
    parted_edition(root)
    record = json.loads((root / PROFILE / parts.PARTS_FILE).read_text())
    record["parts"]["vae"]["file"] = "../../bystander.txt"
    (root / PROFILE / parts.PARTS_FILE).write_text(json.dumps(record))
    with pytest.raises(TransferError, match=r"parts\.vae\.file"):
        parts.import_parts(PROFILE, root, sandbox / "results", log=lambda _: None)
    with pytest.raises(TransferError, match="is not a plain name"):
        parts.read_parts("../smoke", root)


def test_an_alias_that_is_a_path_is_refused_when_loading():
    bad = {"aliases": {"vae-seed0-0123456789": "../../../../tmp/evil"}}
    with pytest.raises(schemas.SchemaError, match="alias"):
        runs.run_path(PROFILE, "vae-seed0-0123456789", bundle=bad)


def test_inside_refuses_every_way_out(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    for names in (("..",), ("a", "..", ".."), ("/etc",), ("link", "x")):
        with pytest.raises(schemas.SchemaError, match="leads outside"):
            schemas.inside(tmp_path / "root", *names)
    assert schemas.inside(tmp_path / "root", "a", "b") == tmp_path / "root" / "a" / "b"


# 2. Only the runs an edition lists ----------------------------------------------------------------

def test_a_run_folder_the_bundle_does_not_list_is_refused(sandbox):
    files = bundle_files()
    files.update(run_members("vae-seed7-0123456789"))  # planted, with its sums
    refused(write_tar(with_sums(files), sandbox / "in" / "b.tar.gz"), sandbox, "not listed: vae-seed7-0123456789")


def test_a_part_without_runs_under_a_made_up_group_is_refused(sandbox):
    """The attack as it was made: part.json and its parts.json entry both say ``runs: null`` for a
    group the profile does not have (``None == None`` passed), and every folder was installed."""
    parted_edition(sandbox / "editions")
    victim = sandbox / "editions" / PROFILE / parts.part_name("vae")
    with tarfile.open(victim) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}
    files.update(run_members("vae-seed7-0123456789"))  # a planted run beside the genuine ones
    meta = {**json.loads(files["part.json"]), "group": "made up", "runs": None}
    write_tar(with_sums({**files, "part.json": json.dumps(meta).encode()}), victim)
    record = json.loads((sandbox / "editions" / PROFILE / parts.PARTS_FILE).read_text())
    entry = record["parts"].pop("vae")
    record["parts"]["made up"] = {**entry, "runs": None, "sha256": hashlib.sha256(victim.read_bytes()).hexdigest()}
    (sandbox / "editions" / PROFILE / parts.PARTS_FILE).write_text(json.dumps(record))
    with pytest.raises(TransferError, match="runs"):
        parts.import_parts(PROFILE, sandbox / "editions", sandbox / "results", log=lambda _: None)
    assert not (sandbox / "results" / PROFILE / "runs").exists()


def test_a_manifest_of_another_run_is_refused(sandbox):
    files = bundle_files()
    rid = edition.run_ids(PROFILE)["vae"][0]
    other = edition.run_ids(PROFILE)["vae"][1]
    files[f"runs/{rid}/manifest.json"] = json.dumps(_manifest(other)).encode()
    refused(write_tar(with_sums(files), sandbox / "in" / "b.tar.gz"), sandbox, f"is of run '{other}'")


# 3. Schemas: no traceback, the field named ------------------------------------------------------

@pytest.mark.parametrize("mutate,match", [
    (lambda f: f.update({"bundle.json": b"{not json"}), "not valid JSON"),
    (lambda f: f.update({"bundle.json": b'{"format": 1, "profile": ' + b"9" * 5000 + b"}"}), "not valid JSON"),
    (lambda f: f.update({"bundle.json": b"[1, 2]"}), r"bundle.json: \(top\): Input should be a valid dictionary"),
    (lambda f: f.update({"bundle.json": json.dumps({**json.loads(f["bundle.json"]), "runs": [1]}).encode()}),
     "runs: Input should be a valid dictionary"),
    (lambda f: f.update({"bundle.json": json.dumps({k: v for k, v in json.loads(f["bundle.json"]).items()
                                                    if k != "provenance"}).encode()}), "provenance: Field required"),
    (lambda f: f.update({k: b'{"fid": NaN}' for k in f if k.endswith("metrics-0123456789.json")}), "NaN"),
    (lambda f: f.update({k: b'{"fid": -1.0}' for k in f if k.endswith("metrics-0123456789.json")}), "fid"),
    (lambda f: f.update({k: b'[{"epoch": 1, "seconds": 1e999}]' for k in f if k.endswith("history.json")}),
     "Infinity|finite"),
])
def test_malformed_metadata_is_refused_naming_the_field(sandbox, mutate, match):
    files = bundle_files()
    mutate(files)
    refused(write_tar(with_sums(files), sandbox / "in" / "b.tar.gz"), sandbox, match)


# 4. Nothing local lost -----------------------------------------------------------------------------

def test_import_keeps_runs_trained_here_finished_or_not(sandbox):
    ids = edition.run_ids(PROFILE)
    finished, unfinished = ids["vae"][0], ids["vae"][1]
    local = sandbox / "results" / PROFILE / "runs"
    for rid in (finished, unfinished):
        (local / rid).mkdir(parents=True)
        (local / rid / "checkpoint.pt").write_bytes(b"hours of CPU " + rid.encode())
    (local / finished / "manifest.json").write_text(json.dumps(_manifest(finished)))
    said: list[str] = []
    for path in (write_tar(bundle_files(), sandbox / "in" / "b.tar.gz"), parted_edition(sandbox / "editions")):
        bundle.import_bundle(path, sandbox / "results", log=said.append)
    assert (local / finished / "checkpoint.pt").read_bytes() == b"hours of CPU " + finished.encode()
    backups = list((sandbox / "results" / PROFILE / "backup").glob(f"{unfinished}-*/checkpoint.pt"))
    assert [b.read_bytes() for b in backups] == [b"hours of CPU " + unfinished.encode()]
    assert any("kept in" in s and unfinished in s for s in said)
    assert any("kept 1 run(s) trained here" in s for s in said)
    parts.import_parts(PROFILE, sandbox / "editions", sandbox / "results", log=said.append)
    assert (local / finished / "checkpoint.pt").is_file()


# 5. Bombs and big members --------------------------------------------------------------------------

def _tar_with(members: list[tuple[tarfile.TarInfo, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for info, data in members:
            tar.addfile(info, data)
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, n: int):
        self.left = n

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n

    def readable(self) -> bool:
        return True


def test_a_member_over_the_limits_is_refused_from_its_header(sandbox, monkeypatch):
    rid = edition.run_ids(PROFILE)["vae"][0]
    info = tarfile.TarInfo(f"runs/{rid}/metrics-0123456789.json")
    info.size = schemas.MAX_JSON_BYTES + 1
    path = _tar_with([(info, _Zeros(info.size))], sandbox / "in" / "bomb.tar.gz")
    assert path.stat().st_size < info.size // 100  # a bomb: small archive, large member
    refused(path, sandbox, "goes over the limits")
    monkeypatch.setattr(transfer, "MAX_MEMBERS", 3)
    many = [(tarfile.TarInfo(f"runs/{rid}/nn-000000000{i}.json"), io.BytesIO(b"")) for i in range(5)]
    refused(_tar_with(many, sandbox / "in" / "many.tar.gz"), sandbox, "more than 3 members")


def test_members_are_streamed_not_read_whole(tmp_path):
    """A 48 MiB member (under the limit) unpacks with a few MiB of Python memory."""
    rid = edition.run_ids(PROFILE)["vae"][0]
    info = tarfile.TarInfo(f"runs/{rid}/weights.pt")
    info.size = 48 * 2**20
    path = _tar_with([(info, _Zeros(info.size))], tmp_path / "big.tar.gz")
    tracemalloc.start()
    with pytest.raises(TransferError, match="has no SHA256SUMS"):
        transfer.unpack_verified(path, tmp_path / "out", "bundle")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (tmp_path / "out" / info.name).stat().st_size == info.size
    assert peak < 8 * 2**20, peak


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write a sparse member")
def test_a_sparse_member_is_refused(sandbox, tmp_path):
    rid = edition.run_ids(PROFILE)["vae"][0]
    d = tmp_path / "src" / "runs" / rid
    d.mkdir(parents=True)
    with open(d / "weights.pt", "wb") as f:
        f.truncate(2**31)  # 2 GiB of holes
    archive = sandbox / "in" / "sparse.tar.gz"
    archive.parent.mkdir()
    subprocess.run(["tar", "--sparse", "--format=gnu", "-czf", str(archive), "-C", str(tmp_path / "src"), "runs"],
                   check=True)
    assert archive.stat().st_size < 2**20
    refused(archive, sandbox, "sparse file|link or special")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE])
def test_links_devices_and_folders_are_refused(sandbox, kind):
    rid = edition.run_ids(PROFILE)["vae"][0]
    info = tarfile.TarInfo(f"runs/{rid}/manifest.json")
    info.type, info.linkname = kind, "../../../bystander.txt"
    refused(_tar_with([(info, None)], sandbox / "in" / "link.tar.gz"), sandbox,
            "link or special file|not a plain file")  # refused before this change too: a regression test


def test_a_duplicate_member_and_a_huge_extended_header_are_refused(sandbox):
    files = bundle_files()
    name = next(k for k in files if k.endswith("history.json"))
    path = sandbox / "in" / "dup.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for n, data in [*files.items(), (name, files[name])]:
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    refused(path, sandbox, "appears twice")
    pax = tarfile.TarInfo(name)
    pax.pax_headers = {"comment": "x" * (2 * 2**20)}
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(pax, io.BytesIO(b""))
    refused(path, sandbox, "truncated or damaged")


# 6. Claims labelled as claims ----------------------------------------------------------------------

def test_a_code_version_no_run_id_backs_is_refused_without_other_code(sandbox):
    meta_changes = {"provenance": {**_provenance(), "code_version": "deadbeef0000", "git_commit": "invented"}}
    path = write_tar(bundle_files(meta_changes), sandbox / "in" / "b.tar.gz")
    refused(path, sandbox, r"states code deadbeef0000.*not this checkout's")
    installed = bundle.import_bundle(path, sandbox / "results", other_code=True, log=lambda _: None)
    assert installed["other_code"] and "deadbeef0000" in installed["changes"][0]
