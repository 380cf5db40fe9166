"""An edition in parts: a group exported as a verified archive, installed elsewhere, refused when
damaged or made by other code; the groups `train all --group` selects; the shipped paper parts
belong to this checkout's training code (the campaign's freeze)."""

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from mnistgen import edition, evaluate, parts, runs
from mnistgen.config import make_config
from mnistgen.transfer import TransferError

REPO = Path(__file__).resolve().parents[1]
SWEEP = "gan batch_size=64"


def test_the_shipped_paper_parts_were_trained_by_this_code():
    """While the paper campaign is open, the modules a run id hashes stay as they are: every part
    in editions/paper was made by this checkout's training code, with this code's run ids, and
    its archive is byte for byte what parts.json recorded; and so do the modules a cached metric
    is keyed by."""
    record = parts.read_parts("paper")
    if not record["parts"]:
        pytest.skip("no part of the paper edition is shipped yet")
    assert record["code_version"] == runs.code_version(), (
        f"editions/paper holds parts of training code {record['code_version']}, this checkout's is "
        f"{runs.code_version()}: a change to a module the run id hashes (runs.TRAINING_SOURCES) orphans them")
    ids = edition.run_ids("paper")
    metric_code = runs.code_version(evaluate.METRIC_SOURCES)
    for name, entry in record["parts"].items():
        assert entry["runs"] == ids[name], name
        blob = (parts.parts_dir("paper") / entry["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"] and len(blob) == entry["bytes"], entry["file"]
        # the numbers a part ships instead of weights (the IWAE rows', the objective runs') are
        # cached under the metric code's hash: other metric code could neither find nor recompute them
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            meta = json.load(tar.extractfile(next(m for m in tar if m.name == parts.PART_FILE)))
        assert meta["provenance"]["metric_code_version"] == metric_code, (
            f"{entry['file']} was measured by metric code {meta['provenance']['metric_code_version']}, this "
            f"checkout's is {metric_code}: a change to evaluate.METRIC_SOURCES orphans its cached numbers")


def test_the_committed_paper_edition_names_every_part_shipped():
    """What `make book` renders by default (editions/paper.tar.gz) names, by SHA-256, exactly the
    parts parts.json lists, one for each of the profile's groups: a part re-exported after the
    assemble step, or an edition assembled before every group was in, fails here rather than at a
    user's `make book` (whose import refuses a part that is not the one named)."""
    made = parts.assembled("paper")
    if made is None:
        pytest.skip("editions/paper.tar.gz is not assembled yet")
    assert made["current"], ("editions/paper.tar.gz names other parts than editions/paper/parts.json lists: "
                             "run `python -m mnistgen edition assemble --profile paper` again")
    groups = edition.profile_groups("paper", make_config("evaluation", "paper"))
    listed = parts.read_parts("paper")["parts"]
    pending = set(groups) - set(listed)
    assert pending <= set(edition.followup_groups("paper")), f"groups of the first edition not shipped: {pending - set(edition.followup_groups('paper'))}"
    assert made["parts"] == len(groups) - len(pending), f"{made['parts']} parts named, {len(groups) - len(pending)} shipped"


def test_a_group_with_a_gan_brings_its_judge_and_an_unknown_group_is_named():
    assert list(edition.select_groups("smoke", ["acgan"])) == ["classifier arch=lenet", "acgan"]
    assert list(edition.select_groups("smoke", ["vae"])) == ["vae"]
    objective = "gan objective saturating=False k=1"  # no quality checks while training: no judge
    assert list(edition.select_groups("smoke", [objective])) == [objective]
    with pytest.raises(ValueError, match=r"no group 'gan beta1=0.5'; its groups: classifier arch=lenet; "):
        edition.select_groups("smoke", ["gan beta1=0.5"])
    r = subprocess.run([sys.executable, "-m", "mnistgen", "train", "all", "--profile", "smoke", "--group", "nope"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode != 0 and "no group 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_edition_status_lists_every_group_with_its_state(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mnistgen", "edition", "status", "--profile", "smoke"],
                       capture_output=True, text=True, cwd=REPO, env={**os.environ, "MNISTGEN_RESULTS": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    groups = edition.profile_groups("smoke", make_config("evaluation", "smoke"))
    lines = [line.strip() for line in r.stdout.splitlines() if line.startswith("  ")]
    assert [line.split("  ")[0] for line in lines] == list(groups)
    assert all(" runs: missing" in line for line in lines)  # nothing trained in an empty results folder
    followup = edition.followup_groups("smoke")
    assert [line.split("  ")[0] for line in lines if line.endswith("(follow-up: the edition renders without it until "
                                                                   "it is shipped)")] == list(followup)
    assert r.stdout.splitlines()[-1] == f"0 of {len(groups)} groups shipped (0.0 MiB)"


def test_status_projects_an_iwae_row_from_its_timed_epoch_and_only_with_as_many_seeds(tmp_path):
    ev = make_config("evaluation", "smoke")
    name = next(n for n in edition.profile_groups("smoke", ev) if n.startswith("iwae"))
    members = edition.group_members("smoke", edition.profile_groups("smoke", ev)[name], ev)
    timed = {"steps_per_epoch": 600, "ms_per_step": 50.0, "eval_s": 6.0}  # 36 s an epoch
    cost = {"rows": {name: {f"smoke_{len(members)}_seeds": timed}}}
    rows = {r["group"]: r for r in parts.status("smoke", tmp_path, tmp_path, iwae_cost=cost)}
    assert rows[name]["projected_hours"] == round(members[0].epochs * 36 / 3600, 2)
    other = {"rows": {name: {f"smoke_{len(members) + 1}_seeds": timed}}}  # timed with other seeds: no claim
    assert {r["group"]: r for r in parts.status("smoke", tmp_path, tmp_path, iwae_cost=other)}[name]["projected_hours"] is None


@pytest.fixture(scope="module")
def sweep_part(tmp_path_factory):
    """The smoke sweep's batch-64 group (two beta1 values x two seeds, one batch), trained and exported."""
    ev = make_config("evaluation", "smoke")
    groups = edition.profile_groups("smoke", ev)
    for name in ("classifier arch=lenet", SWEEP):
        assert "done" in edition.train_group("smoke", groups[name])
    root = tmp_path_factory.mktemp("editions")
    entry = parts.export_part("smoke", SWEEP, root, log=lambda _: None)
    return root, entry


@pytest.mark.slow
def test_a_group_ships_as_a_part_that_installs_elsewhere_and_loads_its_generators(sweep_part, tmp_path):
    root, entry = sweep_part
    record = parts.read_parts("smoke", root)
    blob = (root / "smoke" / entry["file"]).read_bytes()
    assert entry["file"] == "gan-batch_size-64.tar.gz" and record["code_version"] == runs.code_version()
    assert hashlib.sha256(blob).hexdigest() == entry["sha256"] and entry["runs"] == edition.run_ids("smoke")[SWEEP]
    ev = make_config("evaluation", "smoke")
    members = edition.group_members("smoke", edition.profile_groups("smoke", ev)[SWEEP], ev)
    assert [(c.beta1, c.seed) for c in members] == [(0.5, 0), (0.5, 1), (0.9, 0), (0.9, 1)]
    policy = parts.shipped_weights("smoke", SWEEP)
    # every seed's generator (the pick's seeds are scored later), snapshots of each setting's first seed
    assert [policy[r] for r in entry["runs"]] == [(("G",), True), (("G",), False), (("G",), True), (("G",), False)]

    laptop = tmp_path / "laptop"
    assert parts.import_parts("smoke", root, laptop, log=lambda _: None) == [SWEEP]
    judge = runs.get_run(make_config("classifier", "smoke", arch="lenet"), "smoke")  # names the runs' ids
    shipped = runs.get_member_runs(members, "smoke", judge=judge, results_root=laptop)
    trained = runs.get_member_runs(members, "smoke", judge=judge)
    for a, b in zip(shipped, trained):
        assert a.cached and set(a.models) == {"G"} and not (a.path / "checkpoint.pt").exists()
        for p, q in zip(a.models["G"].parameters(), b.models["G"].parameters()):
            assert torch.equal(p, q)
        assert a.history == b.history
    rows = {r["group"]: r["state"] for r in parts.status("smoke", root, laptop)}
    assert rows[SWEEP] == "shipped" and rows["vae"] == "missing"


@pytest.mark.slow
def test_a_damaged_part_or_a_part_of_other_code_is_refused_before_anything_is_installed(sweep_part, tmp_path,
                                                                                         monkeypatch):
    root, entry = sweep_part
    damaged = tmp_path / "damaged"
    (damaged / "smoke").mkdir(parents=True)
    blob = bytearray((root / "smoke" / entry["file"]).read_bytes())
    blob[len(blob) // 2] ^= 1
    (damaged / "smoke" / entry["file"]).write_bytes(bytes(blob))
    (damaged / "smoke" / parts.PARTS_FILE).write_text((root / "smoke" / parts.PARTS_FILE).read_text())
    laptop = tmp_path / "laptop"
    with pytest.raises(TransferError, match="does not match its SHA-256 in parts.json"):
        parts.import_parts("smoke", damaged, laptop, log=lambda _: None)
    assert not (laptop / "smoke" / "runs").exists()

    ids = edition.run_ids("smoke")
    monkeypatch.setattr(edition, "run_ids", lambda profile: {**ids, SWEEP: [r + "x" for r in ids[SWEEP]]})
    with pytest.raises(TransferError, match=r"trained by other code or settings than this checkout's .* "
                                            r"Retrain it: `mnistgen train all --profile smoke --group 'gan batch_size=64'`"):
        parts.import_parts("smoke", root, laptop, log=lambda _: None)
    assert not (laptop / "smoke" / "runs").exists()


@pytest.mark.slow
def test_a_part_of_other_training_code_is_not_added_to_the_shipped_ones(sweep_part, tmp_path, monkeypatch):
    root, _ = sweep_part
    other = tmp_path / "editions"
    (other / "smoke").mkdir(parents=True)
    record = parts.read_parts("smoke", root)
    (other / "smoke" / parts.PARTS_FILE).write_text(json.dumps({**record, "code_version": "0123456789ab"}))
    with pytest.raises(TransferError, match="trained by code 0123456789ab, this checkout's training code is"):
        parts.export_part("smoke", SWEEP, other, log=lambda _: None)
    monkeypatch.setattr(parts, "RESULTS_ROOT", tmp_path / "empty")
    with pytest.raises(TransferError, match=r"group 'vae z_dim=2' of profile 'smoke' is not trained here \(2 of 2 runs"):
        parts.export_part("smoke", "vae z_dim=2", tmp_path / "fresh", log=lambda _: None)


@pytest.mark.slow
def test_an_objective_part_ships_its_metrics_and_only_its_first_seeds_generator(tmp_path):
    """The objective chapter scores every seed's final samples; the part carries those numbers
    (computed at export, the chapters' own call), so it ships only the generator its figure draws."""
    name = "gan objective saturating=False k=1"
    group = edition.profile_groups("smoke", make_config("evaluation", "smoke"))[name]
    assert "done" in edition.train_group("smoke", group)
    entry = parts.export_part("smoke", name, tmp_path, log=lambda _: None)
    import tarfile

    with tarfile.open(tmp_path / "smoke" / entry["file"]) as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("part.json").read())
    for i, rid in enumerate(entry["runs"]):
        assert any(n.startswith(f"runs/{rid}/metrics-") for n in names), rid
        assert meta["shipped"][rid] == {"models": ["G"] if i == 0 else [], "snapshots": i == 0}


@pytest.mark.slow
def test_an_iwae_part_ships_its_rows_numbers_without_weights(tmp_path):
    """An IWAE row ships no weights, so its export computes the numbers the IWAE table reads (each
    seed's test NLL and active units, through evaluate.iwae_table's calls); once installed
    elsewhere, the table's calls find them there, on runs that hold no network."""
    from mnistgen import evaluate

    name = next(n for n in edition.profile_groups("smoke", make_config("evaluation", "smoke")) if n.startswith("iwae"))
    group = edition.profile_groups("smoke", make_config("evaluation", "smoke"))[name]
    assert "done" in edition.train_group("smoke", group)
    entry = parts.export_part("smoke", name, tmp_path, log=lambda _: None)
    laptop = tmp_path / "laptop"
    assert parts.import_parts("smoke", tmp_path, laptop, log=lambda _: None) == [name]

    table = make_config("iwae_table", "smoke")
    ev = dataclasses.replace(make_config("evaluation", "smoke"), nll_images=table.nll_images)
    cfg = make_config("iwae", "smoke", objective=group["objective"], k=group["k"], device=ev.device)
    here = runs.get_runs(cfg, "smoke", list(table.seeds))
    there = runs.get_runs(cfg, "smoke", list(table.seeds), results_root=laptop)
    assert [r.path.name for r in there] == entry["runs"]
    for a, b in zip(there, here):
        assert a.cached and not a.models and not (a.path / "checkpoint.pt").exists()
        assert evaluate.vae_nll(a, ev) == evaluate.vae_nll(b, ev)
        assert evaluate.active_units(a) == evaluate.active_units(b)


def test_an_edition_is_assembled_only_from_every_one_of_its_groups(tmp_path):
    with pytest.raises(TransferError, match=r"groups of profile 'smoke' are not shipped in .*: classifier arch=lenet; "):
        parts.assemble("smoke", tmp_path, tmp_path / "smoke.tar.gz", log=lambda _: None)
    assert not (tmp_path / "smoke.tar.gz").exists()
    r = subprocess.run([sys.executable, "-m", "mnistgen", "edition", "assemble", "--profile", "smoke"],
                       capture_output=True, text=True, cwd=REPO, env={**os.environ, "MNISTGEN_RESULTS": str(tmp_path)})
    assert r.returncode != 0 and "not shipped in" in r.stderr and "Traceback" not in r.stderr


def test_two_groups_holding_one_run_are_refused(tmp_path, monkeypatch):
    """The objective's longer runs at the sweep's epochs would be the sweep's beta1 0.5, batch 128 runs:
    one run in two groups (shipped twice, and refused by bundle import). The profile is refused first."""
    from mnistgen import config

    text = (config.PROFILES_DIR / "smoke.yml").read_text().replace("objective_epochs: 3", "objective_epochs: 2")
    assert "objective_epochs: 2" in text
    (tmp_path / "smoke.yml").write_text(text)
    monkeypatch.setattr(config, "PROFILES_DIR", tmp_path)
    with pytest.raises(config.ConfigError, match=r"groups 'gan batch_size=128' and 'gan objective saturating=False k=1 "
                                                 r"epochs=2' both hold run gan-seed0-"):
        edition.run_ids("smoke")
