"""Import fuzzed: a tiny edition (tests/test_hostile.py's, bundle and parts) mutated at random
(bytes, JSON fields, member names, sizes and types) either installs what its archives hold or is
refused with the project's own error: never a traceback, never a file changed outside the results
folder, never local training lost.

``make test`` runs a fixed number of examples; ``MNISTGEN_FUZZ_EXAMPLES=10000`` runs more.
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mnistgen import bundle, edition, parts
from mnistgen.transfer import TransferError
from test_hostile import PROFILE, _manifest, bundle_files, parted_edition, snapshot, with_sums, write_tar

EXAMPLES = int(os.environ.get("MNISTGEN_FUZZ_EXAMPLES", "40"))

HOSTILE_NAMES = ["../x", "/etc/passwd", "runs/../../x", "runs/a/../../b", "runs//manifest.json", "..", ".",
                 "runs/vae-seed0-0123456789/../../../bystander.txt", "runs/vae-seed0-0123456789/x.sh",
                 "bundle.json/", "runs/" + "a" * 300, "SHA256SUMS\n", "runs/vae-seed9-zzzzzzzzzz/manifest.json"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False)
    | st.sampled_from(["", "../..", "/tmp", "<script>alert(1)</script>", "a" * 1000, "deadbeef0000", "smoke",
                       "vae-seed0-0123456789", "\n<img src=x onerror=alert(1)>"]) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _set(obj: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def _mutate_members(files: dict[str, bytes], data: st.DataObject, meta_file: str) -> tuple[dict[str, bytes], list[tarfile.TarInfo]]:
    """One mutation of an archive's members; returns the members and any odd members to add."""
    kind = data.draw(st.sampled_from(["json", "json", "json", "rename", "drop", "add", "odd", "big"]))
    names = sorted(files)
    odd: list[tarfile.TarInfo] = []
    if kind == "json":
        name = data.draw(st.sampled_from([n for n in names if n.endswith(".json")]))
        obj = json.loads(files[name])
        path = data.draw(st.sampled_from(_paths(obj)))
        obj = _set(obj, path, data.draw(json_values), data.draw(st.booleans()))
        files[name] = json.dumps(obj, allow_nan=True).encode()
    elif kind == "rename":
        name = data.draw(st.sampled_from(names))
        files[data.draw(st.sampled_from(HOSTILE_NAMES) | st.text(min_size=1, max_size=40))] = files.pop(name)
    elif kind == "drop":
        files.pop(data.draw(st.sampled_from(names)))
    elif kind == "add":
        rid = data.draw(st.sampled_from(["vae-seed9-0123456789", *[r for rs in edition.run_ids(PROFILE).values() for r in rs]]))
        files[f"runs/{rid}/manifest.json"] = json.dumps(_manifest(rid)).encode()
        files[f"runs/{rid}/history.json"] = b"[]"
    elif kind == "odd":
        info = tarfile.TarInfo(data.draw(st.sampled_from(HOSTILE_NAMES + names)))
        info.type = data.draw(st.sampled_from([tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE,
                                               tarfile.CHRTYPE]))
        info.linkname = data.draw(st.sampled_from(["../../bystander.txt", "/etc/passwd", names[0]]))
        odd.append(info)
    else:  # a member of zeros, possibly over the limits
        name = data.draw(st.sampled_from(names))
        files[name] = bytes(data.draw(st.sampled_from([0, 1, 9 * 2**20])))
    if data.draw(st.booleans()):  # a careful forger recomputes the sums
        files = with_sums(files)
    return files, odd


def _write(files: dict[str, bytes], odd: list[tarfile.TarInfo], path: Path) -> None:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in odd:
            tar.addfile(info)


def _installed_as_shipped(results: Path, archives: list[dict[str, bytes]], local: dict[str, bytes]) -> None:
    """Every installed run file is the one an archive holds, or a run trained here."""
    runs_dir = results / PROFILE / "runs"
    held = {k: v for a in archives for k, v in a.items()}
    for p in runs_dir.rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            rel = p.relative_to(runs_dir.parent).as_posix()
            assert held.get(rel) == p.read_bytes() or local.get(rel) == p.read_bytes(), rel


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100, report_multiple_bugs=True,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: minutes per failure here
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_fuzzed_edition_installs_what_it_holds_or_is_refused(data):
    with tempfile.TemporaryDirectory() as tmp:
        box = Path(tmp)
        (box / "bystander.txt").write_text("mine")
        results = box / "results"
        ids = edition.run_ids(PROFILE)
        finished, unfinished = ids["vae"][0], ids["vae"][1]
        local = {f"runs/{finished}/checkpoint.pt": b"hours " + finished.encode(),
                 f"runs/{finished}/manifest.json": json.dumps(_manifest(finished)).encode(),
                 f"runs/{unfinished}/checkpoint.pt": b"hours " + unfinished.encode()}
        for rel, blob in local.items():
            (results / PROFILE / rel).parent.mkdir(parents=True, exist_ok=True)
            (results / PROFILE / rel).write_bytes(blob)
        target = data.draw(st.sampled_from(["bundle", "assembled", "part", "parts.json", "bytes"]))
        other_code = data.draw(st.booleans())
        if target == "bundle":
            path = write_tar(bundle_files(), box / "in" / "smoke.tar.gz")
        else:
            path = parted_edition(box / "editions")
        archives = []
        if target in ("bundle", "assembled"):
            files, odd = _mutate_members(_members(path), data, "bundle.json")
            _write(files, odd, path)
        elif target == "part":
            victim = data.draw(st.sampled_from(sorted((box / "editions" / PROFILE).glob("*.tar.gz"))))
            files, odd = _mutate_members(_members(victim), data, "part.json")
            _write(files, odd, victim)
        elif target == "parts.json":
            record = json.loads((box / "editions" / PROFILE / "parts.json").read_text())
            where = data.draw(st.sampled_from(_paths(record)))
            record = _set(record, where, data.draw(json_values), data.draw(st.booleans()))
            (box / "editions" / PROFILE / "parts.json").write_text(json.dumps(record, allow_nan=True))
        else:  # flipped or cut bytes of the archive itself
            blob = bytearray(path.read_bytes())
            rng = random.Random(data.draw(st.integers(0, 2**32)))
            if data.draw(st.booleans()):
                blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
            else:
                blob = blob[: rng.randrange(len(blob))]
            path.write_bytes(bytes(blob))
        # what import may install: the parts' weights, the bundle's manifests, histories and metrics
        for a in [*sorted((box / "editions" / PROFILE).glob("*.tar.gz")), path]:
            try:
                archives.append(_members(a))
            except (tarfile.TarError, EOFError, OSError, KeyError, zlib.error):
                pass
        outside = {k: v for k, v in snapshot(box).items() if not k.startswith("results/")}
        before = snapshot(results)
        try:
            if target == "parts.json":
                parts.import_parts(PROFILE, box / "editions", results, log=lambda _: None)
            else:
                bundle.import_bundle(path, results, other_code=other_code, log=lambda _: None)
            ok = True
        except TransferError:
            ok = False
        assert {k: v for k, v in snapshot(box).items() if not k.startswith("results/")} == outside
        runs_dir = results / PROFILE / "runs"
        assert (runs_dir / finished / "checkpoint.pt").read_bytes() == local[f"runs/{finished}/checkpoint.pt"]
        kept = [p.read_bytes() for p in [runs_dir / unfinished / "checkpoint.pt",
                                         *(results / PROFILE / "backup").glob(f"{unfinished}-*/checkpoint.pt")]
                if p.is_file()]
        assert kept == [local[f"runs/{unfinished}/checkpoint.pt"]]
        if ok:
            _installed_as_shipped(results, archives, local)
        else:
            assert snapshot(results) == before  # refused: nothing installed, nothing half-written
