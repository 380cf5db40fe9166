"""Results bundles and `train all --time-limit` (the paper edition's machinery), with the smoke
profile standing in for the paper's: real training and metrics, tiny subsets.

The smoke edition is trained in this session's results folder (in a full run the reference
notebooks have trained it already: then only the missing metrics are computed), exported once,
and each test imports the bundle, or a damaged copy of it, into a folder of its own.
"""

import ast
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

from mnistgen import bundle, edition, runs
from mnistgen.config import make_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_bundle(tmp_path_factory) -> Path:
    ev = make_config("evaluation", "smoke")
    for group in edition.profile_groups("smoke", ev).values():
        assert "done" in edition.train_group("smoke", group)
    assert edition.measure("smoke", log=lambda _: None) == []
    out = tmp_path_factory.mktemp("bundle") / "smoke.tar.gz"
    summary = bundle.export("smoke", out, log=lambda _: None)
    assert summary["runs"] == sum(len(r) for r in edition.run_ids("smoke").values())
    return out


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _repack(files: dict[str, bytes], path: Path, resum: bool = False) -> Path:
    """A bundle of ``files`` (``resum``: with SHA256SUMS recomputed, as a careful forger would)."""
    files = dict(files)
    if resum:
        files.pop(bundle.SUMS)
        files[bundle.SUMS] = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in sorted(files.items())).encode()
    with open(path, "wb") as f:
        bundle._write_tar(f, files)
    return path


def _env(results: Path) -> dict[str, str]:
    return {**os.environ, "MNISTGEN_RESULTS": str(results)}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def test_the_bundle_ships_what_the_figures_use_and_nothing_else(smoke_bundle):
    files = _members(smoke_bundle)
    meta = json.loads(files["bundle.json"])
    ids = edition.run_ids("smoke")
    assert meta["runs"] == ids
    assert {n.split("/")[1] for n in files if n.startswith("runs/")} == {r for rs in ids.values() for r in rs}
    shipped = {rid: s["models"] for rid, s in meta["shipped"].items() if s["models"]}
    # the first yardstick, the first seed's G of the objective runs (4), of every sweep setting and of
    # the AC-GAN, and the first seed's VAE of d = 20 and d = 2: no discriminator, no IWAE, no optimiser
    ev = make_config("evaluation", "smoke")
    groups = edition.profile_groups("smoke", ev)
    sweep = make_config("gan_sweep", "smoke")
    settings = len(sweep.beta1s) * len(sweep.batch_sizes)
    followups = edition.followup_groups("smoke")  # the longer pick, the objective's four settings longer, the AC-GAN at 0.9
    assert len(followups) == 6 and set(followups) <= set(ids)
    assert len([g for g in ids if g.startswith("gan objective") and g not in followups]) == 4
    assert len([g for g in ids if "beta1s" in groups[g]]) == 2
    seeds = len(ev.seeds)  # the pick and the AC-GAN ship every seed's G (the copy test, the latent paths)
    assert sorted(m for ms in shipped.values() for m in ms) == ["G"] * (4 + settings + 1 + 6 + 2 * (seeds - 1)) + [
        "net", "vae", "vae"]
    chosen = [rid for rs in ids.values() for rid in rs if meta["shipped"][rid]["snapshots"]]
    # the sweep's pick, with its training strip
    assert len(chosen) == 1 and any(chosen[0] in ids[g] for g in ids if g.startswith("gan batch_size="))
    for g in ids:  # only the first seed of every other setting ships weights (the IWAE rows and the second yardstick: none)
        members = edition.group_members("smoke", groups[g], ev)
        pick_beta1 = members[ids[g].index(chosen[0])].beta1 if chosen[0] in ids[g] else None

        def ships(c) -> bool:
            if g.startswith("iwae") or g == f"classifier arch={ev.yardsticks[-1]}":
                return False
            return g == "acgan" or (pick_beta1 is not None and c.beta1 == pick_beta1) or c.seed == members[0].seed

        assert {rid for rid in ids[g] if rid in shipped} == {rid for c, rid in zip(members, ids[g]) if ships(c)}, g
    payload = runs.read_checkpoint(_tmp_file(files[f"runs/{ids['acgan'][0]}/weights.pt"]))
    assert set(payload["state"]) == {"models", "epoch", "snapshots"} and set(payload["state"]["models"]) == {"G"}
    prov = meta["provenance"]
    assert prov["code_version"] == runs.code_version() and prov["sources"] == bundle.source_hashes()
    assert prov["profile_settings"] == (REPO / "profiles" / "smoke.yml").read_text()
    # the archive is deterministic: members sorted, no owner or time in it
    with tarfile.open(smoke_bundle, "r:gz") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == sorted(i.name for i in infos) and {i.mtime for i in infos} == {0}


@pytest.mark.slow
def test_every_chapter_renders_from_an_imported_bundle_and_trains_nothing(smoke_bundle, tmp_path):
    """What `make book` does where an edition is shipped: every chapter renders from the bundle's runs,
    weights and cached metrics alone (a chapter that needed an unshipped model or an uncached metric
    would fail here or train), and the book's widgets get their weights."""
    laptop = tmp_path / "laptop"
    bundle.import_bundle(smoke_bundle, laptop, log=lambda _: None)
    runs_dir = laptop / "smoke" / "runs"
    before = _files(runs_dir)
    r = subprocess.run([sys.executable, "-m", "mnistgen", "render", "all", "--profile", "smoke", "--out",
                        str(tmp_path / "book")], env=_env(laptop), capture_output=True, text=True, timeout=900, cwd=REPO)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert sorted(p.name for p in (tmp_path / "book").glob("*.ipynb")) == sorted(
        f"{stem}.ipynb" for stem in ("01_gan_objective", "02_gan_experiments", "03_vae", "04_acgan", "05_evaluation",
                                     "06_edition"))
    after = _files(runs_dir)
    assert {f for f in after - before if f.endswith((".pt", "manifest.json"))} == set(), "a run was trained"
    assert {p.name for p in (laptop / "smoke" / "widgets").glob("*.js")} == {"gan.js", "acgan.js", "vae.js"}


def _tmp_file(data: bytes) -> Path:
    import tempfile

    f = Path(tempfile.mkdtemp()) / "weights.pt"
    f.write_bytes(data)
    return f


def test_an_imported_bundle_renders_the_same_metrics_and_trains_nothing(smoke_bundle, tmp_path):
    """The evaluation chapter rendered from the trained results and from the imported bundle
    writes the same metrics.json; the import adds no run and no metric while rendering."""
    here = runs.RESULTS_ROOT
    laptop = tmp_path / "laptop"
    bundle.import_bundle(smoke_bundle, laptop, log=lambda _: None)
    before = _files(laptop / "smoke" / "runs")
    for results in ([] if (here / "smoke" / "metrics.json").is_file() else [here]) + [laptop]:
        r = subprocess.run([sys.executable, "-m", "mnistgen", "render", "evaluation", "--profile", "smoke",
                            "--out", str(tmp_path / results.name)], env=_env(results), capture_output=True,
                           text=True, timeout=600, cwd=REPO)
        assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((laptop / "smoke" / "metrics.json").read_text()) == json.loads((here / "smoke" / "metrics.json").read_text())
    assert _files(laptop / "smoke" / "runs") == before  # no cache written, no run trained
    from mnistgen.report import mean_sd_text, results_markdown

    m = json.loads((laptop / "smoke" / "metrics.json").read_text())
    table = results_markdown(m)  # the README's results, printed by `mnistgen summary`
    # (table cells keep "mean ± sd" on one line with no-break spaces: report.markdown_table)
    assert f"| {mean_sd_text(m['vae']['test_nll'], m['vae']['test_nll_sd'])} / " in table.replace("\u00a0", " ")
    assert table.count("\n| iwae |") + table.count("\n| vae |") == len(m["vae_iwae"])
    assert not (laptop / "smoke" / "trained.jsonl").exists()
    nb = (tmp_path / "laptop" / "05_evaluation.ipynb").read_text()
    assert "Results bundle." in nb and "trained nothing" in nb


@pytest.mark.parametrize("damage", ["flipped byte", "missing file", "extra file", "truncated"])
def test_a_damaged_bundle_is_refused_before_anything_is_installed(smoke_bundle, tmp_path, damage):
    files = _members(smoke_bundle)
    ids = edition.run_ids("smoke")
    victim = f"runs/{ids['vae'][0]}/weights.pt"
    path = tmp_path / "bad.tar.gz"
    if damage == "flipped byte":
        data = bytearray(files[victim])
        data[len(data) // 2] ^= 0x01
        _repack({**files, victim: bytes(data)}, path)
        expect = f"{victim} does not match its SHA-256"
    elif damage == "missing file":
        _repack({k: v for k, v in files.items() if k != victim}, path)
        expect = f"{victim} is listed in SHA256SUMS but missing"
    elif damage == "extra file":
        _repack({**files, "runs/evil/manifest.json": b"{}"}, path)
        expect = "member 'runs/evil/manifest.json' (plain file) is not a file a mnistgen bundle holds"
    elif damage == "truncated":
        path.write_bytes(smoke_bundle.read_bytes()[: smoke_bundle.stat().st_size // 2])
        expect = "truncated or damaged"
    dest = tmp_path / "results"
    with pytest.raises(bundle.BundleError) as e:
        bundle.import_bundle(path, dest, log=lambda _: None)
    assert expect in str(e.value)
    assert _files(dest) == set()  # nothing installed, nothing half-written


def test_weights_altered_with_the_sums_recomputed_are_still_caught_when_loaded(smoke_bundle, tmp_path):
    """SHA256SUMS catches accidents; a forger who recomputes it still meets each weights file's own
    SHA-256 header (runs.read_checkpoint) when the run is loaded."""
    files = _members(smoke_bundle)
    victim = f"runs/{edition.run_ids('smoke')['vae'][0]}/weights.pt"
    data = bytearray(files[victim])
    data[-100] ^= 0x01
    dest = tmp_path / "results"
    bundle.import_bundle(_repack({**files, victim: bytes(data)}, tmp_path / "forged.tar.gz", resum=True), dest,
                         log=lambda _: None)
    with pytest.raises(runs.CheckpointError, match="SHA-256 does not match"):
        runs.get_runs(make_config("vae", "smoke"), "smoke", [0], results_root=dest)


def test_a_bundle_from_other_code_is_refused_unless_asked_and_then_says_so(smoke_bundle, tmp_path):
    """A bundle whose run ids and sources differ from the checkout's (as if losses.py had changed)."""
    files = _members(smoke_bundle)
    meta = json.loads(files["bundle.json"])
    rename = {rid: rid[:-4] + "beef" for rs in meta["runs"].values() for rid in rs}
    other = {}
    for name, data in files.items():
        parts = name.split("/")
        if parts[0] == "runs":
            parts[1] = rename[parts[1]]
            if parts[2] == "manifest.json":  # each run names itself
                data = json.dumps({**json.loads(data), "run_id": parts[1]}).encode()
        other["/".join(parts)] = data
    meta["runs"] = {g: [rename[r] for r in rs] for g, rs in meta["runs"].items()}
    meta["shipped"] = {rename[r]: s for r, s in meta["shipped"].items()}
    meta["provenance"]["sources"]["losses.py"] = "0" * 64
    meta["provenance"]["code_version"] = "0123456789ab"
    other["bundle.json"] = json.dumps(meta).encode()
    path = _repack(other, tmp_path / "other.tar.gz", resum=True)
    dest = tmp_path / "results"
    with pytest.raises(bundle.BundleError) as e:
        bundle.import_bundle(path, dest, log=lambda _: None)
    msg = str(e.value)
    assert "src/mnistgen/losses.py: changed" in msg and "mnistgen train all --profile smoke" in msg
    assert "--other-code" in msg and _files(dest) == set()
    installed = bundle.import_bundle(path, dest, other_code=True, log=lambda _: None)
    assert installed["other_code"] and len(installed["aliases"]) == len(rename)
    # the chapters' calls find the bundle's runs under this code's ids, and say where they come from
    ev = make_config("evaluation", "smoke")
    gan = runs.get_runs(make_config("gan", "smoke", beta1=0.5, batch_size=64), "smoke", list(ev.seeds),
                        judge=runs.get_run(make_config("classifier", "smoke", arch="lenet"), "smoke", results_root=dest),
                        results_root=dest)
    sweep_group = edition.run_ids("smoke")["gan batch_size=64"]  # beta1 0.5's seeds come first
    assert [r.path.name for r in gan] == [rename[r] for r in sweep_group[:len(ev.seeds)]]
    from mnistgen import report

    notice = report.bundle_notice(runs.installed_bundle("smoke", dest))
    assert "Numbers from other code" in notice and "losses.py: changed" in notice and "0123456789ab" in notice


def test_an_installed_bundle_trains_nothing_and_names_missing_weights(smoke_bundle, tmp_path):
    dest = tmp_path / "results"
    first = bundle.import_bundle(smoke_bundle, dest, log=lambda _: None)
    said = []
    assert bundle.import_bundle(smoke_bundle, dest, log=said.append) == first  # `make book` imports every time
    assert said == [f"bundle: {smoke_bundle} is installed in {dest / 'smoke'} already"]
    before = _files(dest)
    with pytest.raises(runs.NotInBundle, match="not in the results bundle installed for profile 'smoke'"):
        runs.get_runs(make_config("vae", "smoke", epochs=3), "smoke", [0], results_root=dest)
    assert _files(dest) == before and not any(p.name.startswith("vae-") and not (p / "manifest.json").exists()
                                              for p in (dest / "smoke" / "runs").iterdir())  # no folder left behind
    with pytest.raises(runs.NotInBundle, match="which nothing retrains"):
        runs.get_runs(make_config("vae", "smoke"), "smoke", [0], results_root=dest, retrain=True)
    vae = runs.get_runs(make_config("vae", "smoke"), "smoke", [0, 1], results_root=dest)
    assert vae[0].models["vae"] is not None and vae[1].history == json.loads((vae[1].path / "history.json").read_text())
    with pytest.raises(runs.WeightsNotShipped, match=r"ships only the weights the report's figures use \(of this run: none\)"):
        vae[1].models["vae"]


@pytest.fixture(scope="module")
def assembled(smoke_bundle, tmp_path_factory) -> Path:
    """The smoke edition shipped in parts and assembled on a machine that trained none of it (its
    results folder: ``<editions>/../laptop``); returns the editions folder (parts and bundle)."""
    from mnistgen import parts

    editions = tmp_path_factory.mktemp("assembled") / "editions"
    for name in edition.run_ids("smoke"):
        parts.export_part("smoke", name, editions, log=lambda _: None)
    r = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from mnistgen import parts; "
                        "parts.assemble('smoke', Path(sys.argv[1]))", str(editions)],
                       env=_env(editions.parent / "laptop"), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    return editions


def test_an_edition_assembled_from_its_parts_names_them_and_installs_their_weights(smoke_bundle, assembled, tmp_path):
    """The paper edition is shipped a group at a time; `edition assemble` installs the parts where
    none of it was trained (runs with shipped weights, no checkpoint), measures what the chapters
    read and writes the edition's bundle beside the parts: the members of the bundle exported where
    everything was trained, byte for byte, but no weights: it names each part by its SHA-256, so the
    repository holds the weights once. Installed elsewhere, every run gets its part's weights, which
    hold whatever the chapters draw with."""
    from mnistgen import parts

    assert not list((assembled.parent / "laptop" / "smoke" / "runs").glob("*/checkpoint.pt"))
    ours, theirs = _members(assembled / "smoke.tar.gz"), _members(smoke_bundle)
    assert set(ours) == {n for n in theirs if not n.endswith(f"/{runs.SHIPPED_WEIGHTS}")}
    assert [n for n in ours if n not in (bundle.BUNDLE_FILE, bundle.SUMS) and ours[n] != theirs[n]] == []
    meta, record = json.loads(ours[bundle.BUNDLE_FILE]), parts.read_parts("smoke", assembled)
    assert meta["parts"]["folder"] == "smoke"
    assert {n: e["sha256"] for n, e in meta["parts"]["files"].items()} == {n: e["sha256"] for n, e in record["parts"].items()}
    assert meta["provenance"]["parts"].keys() == record["parts"].keys() == edition.run_ids("smoke").keys()
    assert parts.assembled("smoke", assembled) == {"path": str(assembled / "smoke.tar.gz"), "parts": len(record["parts"]),
                                                   "current": True}

    elsewhere, full = tmp_path / "elsewhere", tmp_path / "full"
    bundle.import_bundle(assembled / "smoke.tar.gz", elsewhere, log=lambda _: None)
    bundle.import_bundle(smoke_bundle, full, log=lambda _: None)
    assert _files(elsewhere / "smoke" / "runs") == _files(full / "smoke" / "runs")
    for entry in record["parts"].values():
        part = _members(assembled / "smoke" / entry["file"])
        for rid in entry["runs"]:
            got = elsewhere / "smoke" / "runs" / rid
            assert (got / runs.SHIPPED_WEIGHTS).read_bytes() == part[f"runs/{rid}/{runs.SHIPPED_WEIGHTS}"]
            assert json.loads((got / "manifest.json").read_text()) == json.loads((full / "smoke" / "runs" / rid / "manifest.json").read_text())
    for rid, (models, snapshots) in bundle.shipped_weights("smoke").items():  # what the chapters draw with is there
        bundle._weights_source(elsewhere / "smoke" / "runs" / rid, models, snapshots)
    said = []
    bundle.import_bundle(assembled / "smoke.tar.gz", elsewhere, log=said.append)
    assert said == [f"bundle: {assembled / 'smoke.tar.gz'} is installed in {elsewhere / 'smoke'} already"]


@pytest.mark.parametrize("damage", ["missing", "altered", "replaced"])
def test_an_edition_made_of_parts_is_refused_when_a_part_is_not_the_one_it_names(assembled, tmp_path, damage):
    """The bundle pins each part by its SHA-256: a part gone, damaged, or replaced by another one (even
    one that verifies against an updated parts.json) is named, and nothing is installed."""
    import shutil

    from mnistgen import parts

    editions = tmp_path / "editions"
    shutil.copytree(assembled, editions)
    entry = parts.read_parts("smoke", editions)["parts"]["vae"]
    victim = editions / "smoke" / entry["file"]
    if damage == "missing":
        victim.unlink()
        expect = f"part {victim} is missing (listed in {editions / 'smoke.tar.gz'}'s bundle.json)"
    elif damage == "altered":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        expect = f"part {victim} does not match its SHA-256 in {editions / 'smoke.tar.gz'}'s bundle.json"
    else:  # another part of the same group, recorded as if it were the shipped one
        files = _members(victim)
        files["part.json"] = files["part.json"].replace(b'"exported_with"', b'"exported_with_note": "again", "exported_with"')
        _repack(files, victim, resum=True)
        record = json.loads((editions / "smoke" / "parts.json").read_text())
        record["parts"]["vae"]["sha256"] = hashlib.sha256(victim.read_bytes()).hexdigest()
        (editions / "smoke" / "parts.json").write_text(json.dumps(record))
        expect = "does not match its SHA-256 in"
        assert parts.assembled("smoke", editions)["current"] is False  # `edition status` says: assemble again
    dest = tmp_path / "results"
    with pytest.raises(bundle.BundleError) as e:
        bundle.import_bundle(editions / "smoke.tar.gz", dest, log=lambda _: None)
    assert expect in str(e.value)
    assert _files(dest) == set()  # nothing installed, nothing half-written


def test_weights_cut_from_an_installed_part_must_hold_what_the_bundle_ships(tmp_path):
    """A bundle exported where the runs were installed from parts cuts each run's weights from the
    part's weights.pt: a part that shipped fewer models (or no snapshots) than the bundle needs is
    named, not silently cut."""
    w = {"weight": torch.arange(3.0)}
    payload = {"identity": {"model": "gan"}, "code_version": "0123456789ab",
               "state": {"models": {"G": w, "D": w}, "epoch": 3, "snapshots": []}}
    run = tmp_path / "gan-seed0-0123456789"
    run.mkdir()
    (run / runs.SHIPPED_WEIGHTS).write_bytes(runs.shipped_bytes(payload, ("G",), snapshots=False))
    cut = bundle._weights_source(run, ("G",), snapshots=False)["state"]
    assert list(cut["models"]) == ["G"] and torch.equal(cut["models"]["G"]["weight"], w["weight"]) and cut["epoch"] == 3
    with pytest.raises(bundle.BundleError, match="gan-seed0-0123456789 was installed without D, which the bundle ships"):
        bundle._weights_source(run, ("D", "G"), snapshots=False)
    with pytest.raises(bundle.BundleError, match="was installed without D, its snapshots, which"):
        bundle._weights_source(run, ("D", "G"), snapshots=True)
    (run / runs.SHIPPED_WEIGHTS).unlink()
    with pytest.raises(bundle.BundleError, match="has neither a checkpoint nor shipped weights"):
        bundle._weights_source(run, ("G",), snapshots=False)


def test_the_objective_chapter_default_is_the_editions(tmp_path):
    """edition.OBJECTIVE_EPOCHS and OBJECTIVE_STRONG_K name the objective chapter's runs: its notebook's defaults."""
    src = (REPO / "notebooks" / "01_gan_objective.py").read_text()
    cell = src.split('# %% tags=["parameters"]')[1].split("# %%")[0]
    values = {t.id: ast.literal_eval(n.value) for n in ast.parse(cell).body for t in n.targets}
    assert values["epochs"] == edition.OBJECTIVE_EPOCHS
    assert values["strong_k"] == edition.OBJECTIVE_STRONG_K


def test_a_time_limit_stops_between_epochs_and_the_next_call_resumes_bitwise(tmp_path, monkeypatch):
    """The deadline is checked before each epoch against the last epoch's wall time; here that
    time is made to look huge after epoch 1, so the stop is deterministic: epoch 1 is
    checkpointed, no manifest, and the call without a limit finishes bitwise as an uninterrupted run."""
    from mnistgen import train

    cfg = make_config("vae", "smoke", epochs=3)
    real = train._last_epoch_seconds
    monkeypatch.setattr(train, "_last_epoch_seconds", lambda st: 1e9 if st.epoch >= 1 else real(st))
    with pytest.raises(train.TimeLimitReached) as e:
        runs.get_runs(cfg, "smoke", [0, 1], results_root=tmp_path / "a", deadline=time.time() + 3600)
    assert {c.seed: n for c, n in e.value.stopped.items()} == {0: 1, 1: 1}  # member -> epochs done
    assert "stopped at epoch 1 of 3" in str(e.value)
    path = runs.results_dir("smoke", tmp_path / "a") / "runs" / runs.run_id(cfg)
    assert (path / "checkpoint.pt").is_file() and not (path / "manifest.json").exists()
    monkeypatch.undo()
    resumed = runs.get_runs(cfg, "smoke", [0, 1], results_root=tmp_path / "a")
    whole = runs.get_runs(cfg, "smoke", [0, 1], results_root=tmp_path / "b")
    for a, b in zip(resumed, whole):
        for (k, x), y in zip(a.models["vae"].state_dict().items(), b.models["vae"].state_dict().values()):
            assert torch.equal(x, y), k
        assert [row["loss"] for row in a.history] == [row["loss"] for row in b.history]


def test_an_edition_with_follow_up_groups_pending_assembles_installs_and_renders_them_as_pending(assembled, tmp_path):
    """An edition shipped before its follow-up groups (the paper edition, until they are trained) is
    assembled without them, installs as this code's edition (not 'other code'), and its chapters say
    which groups are pending instead of training them; a first-edition group missing is still refused."""
    import shutil

    from mnistgen import parts

    editions = tmp_path / "editions"
    shutil.copytree(assembled, editions)
    record = json.loads((editions / "smoke" / parts.PARTS_FILE).read_text())
    followup = edition.followup_groups("smoke")
    pending = [n for n in followup if n.startswith("gan objective")]  # the four longer objective groups
    for name in pending:
        (editions / "smoke" / record["parts"].pop(name)["file"]).unlink()
    (editions / "smoke" / parts.PARTS_FILE).write_text(json.dumps(record, indent=2))
    (editions / "smoke.tar.gz").unlink()
    r = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from mnistgen import parts; "
                        "parts.assemble('smoke', Path(sys.argv[1]))", str(editions)],
                       env=_env(tmp_path / "maker"), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "goes without it (pending)" in r.stdout
    meta = json.loads(_members(editions / "smoke.tar.gz")[bundle.BUNDLE_FILE])
    assert set(meta["runs"]) == set(edition.run_ids("smoke")) - set(pending)
    reader = tmp_path / "reader"
    installed = bundle.import_bundle(editions / "smoke.tar.gz", reader, log=lambda _: None)
    assert not installed["other_code"] and installed["changes"] == []
    before = _files(reader / "smoke" / "runs")
    r = subprocess.run([sys.executable, "-m", "mnistgen", "render", "gan_objective", "--profile", "smoke", "--out",
                        str(tmp_path / "book")], env=_env(reader), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    page = (tmp_path / "book" / "01_gan_objective.ipynb").read_text()
    assert "are not in this edition yet" in page and all(f"`{n}`" in page for n in pending)
    assert _files(reader / "smoke" / "runs") == before  # nothing trained for the pending groups
    # without a first-edition group the same edition is not this code's
    runs_without = {n: v for n, v in meta["runs"].items() if n != "vae"}
    assert edition.held_groups("smoke", runs_without) is None
    assert edition.held_groups("smoke", meta["runs"]) == pending


def test_the_installed_editions_other_code_notice_follows_the_tree(smoke_bundle, tmp_path, monkeypatch):
    """The code changes after an edition is installed, as a user's edit would (in a copy of the
    package the code version is read from): a comment keeps it this code's edition; a statement makes
    `bundle import --other-code` (what `make book` runs) install it again with a notice on every page
    naming the file; the edit reverted, the next import installs it without the notice."""
    import shutil

    from mnistgen import codeversion, pages, report

    sys.path.insert(0, str(REPO / "book" / "_ext"))
    from offline_book import other_code_notice

    copy = tmp_path / "pkg"
    shutil.copytree(codeversion.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codeversion, "PACKAGE_DIR", copy)
    dest = tmp_path / "results"
    book = {"01_gan_objective": pages.Page("01_gan_objective", "smoke")}
    installed = bundle.import_bundle(smoke_bundle, dest, other_code=True, log=lambda _: None)
    assert not installed["other_code"] and other_code_notice(book, dest) == ""
    steps = copy / "steps.py"
    original = steps.read_text()

    steps.write_text(original + "\n# a reader's note: this comment changes no number\n")
    lines: list[str] = []
    installed = bundle.import_bundle(smoke_bundle, dest, other_code=True, log=lines.append)
    assert lines == [f"bundle: {smoke_bundle} is installed in {dest / 'smoke'} already"]

    steps.write_text(original + "\nUNUSED_BY_TRAINING = 1\n")
    lines.clear()
    installed = bundle.import_bundle(smoke_bundle, dest, other_code=True, log=lines.append)
    assert installed["other_code"] and installed["changes"] == ["src/mnistgen/steps.py: changed"]
    assert any("make book PROFILE=quick" in line and "steps.py: changed" in line for line in lines)
    notice = other_code_notice(book, dest)
    assert "Numbers from other code" in notice and "src/mnistgen/steps.py: changed" in notice
    assert "steps.py" in report.bundle_notice(runs.installed_bundle("smoke", dest))

    steps.write_text(original)
    installed = bundle.import_bundle(smoke_bundle, dest, log=lambda _: None)  # this code's again: no flag needed
    assert not installed["other_code"] and installed["changes"] == [] and installed["aliases"] == {}
    assert other_code_notice(book, dest) == "" and "other code" not in report.bundle_notice(installed)
