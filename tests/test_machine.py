"""The machine on record (machine.py) and the page on how an edition was made (made.py): what the
manifests record is shown, what they do not is "unknown" or left out, never guessed."""

import json

from mnistgen import edition, machine, made


def test_the_vector_isa_is_the_widest_the_flags_name():
    assert machine.vector_isa("fpu sse2 avx avx2 avx512f avx512bw") == "avx512"
    assert machine.vector_isa("fpu sse2 avx avx2 fma") == "avx2"
    assert machine.vector_isa("fpu sse2") == "sse"
    assert machine.vector_isa("") == machine.UNKNOWN


def test_this_machine_records_every_field():
    record = machine.this_machine()
    assert set(record) == set(machine.FIELDS)
    assert isinstance(record["torch_threads"], int) and record["gpu"] == "none"
    assert record["torch_isa"] in ("default", "avx2", "avx512", "sve256", "zvector", "vsx", "avx512_vnni")


def test_an_old_manifest_gives_only_what_it_recorded():
    old = {"device": "cpu", "device_name": "x86_64 CPU, 2 torch threads",
           "versions": {"python": "3.11.7", "torch": "2.14.1+cu130", "numpy": "2.4.6", "torchvision": "0.29.1"}}
    record = machine.from_manifest(old)
    assert record["torch_threads"] == 2 and record["torch"] == "2.14.1+cu130" and record["gpu"] == "none"
    assert [k for k, v in record.items() if v == machine.UNKNOWN] == ["cpu", "isa", "torch_isa", "cores", "os",
                                                                       "mkl", "onednn"]
    assert machine.describe(record) == "CPU not recorded, 2 torch threads, Python 3.11.7, torch 2.14.1+cu130, NumPy 2.4.6"
    new = {**old, "machine": {**record, "cpu": "AMD EPYC", "isa": "avx2"}}
    assert machine.from_manifest(new)["cpu"] == "AMD EPYC"


def test_merged_records_name_every_value_where_runs_differ():
    a = {k: machine.UNKNOWN for k in machine.FIELDS} | {"torch_threads": 2}
    b = a | {"torch_threads": 1}
    assert machine.merge([a, a])["torch_threads"] == 2
    assert machine.merge([a, b])["torch_threads"] == "1 / 2"


def test_the_page_reads_each_group_from_its_runs_manifests(tmp_path):
    """Crafted manifests for the smoke profile's groups: one group trained on a recorded machine,
    one before the record existed, the rest missing (shown as not in the edition yet)."""
    ids = edition.run_ids("smoke")
    names = list(ids)
    recorded = {k: machine.UNKNOWN for k in machine.FIELDS} | {"cpu": "AMD EPYC", "isa": "avx2", "torch_threads": 2}
    for i, name in enumerate(names[:2]):
        for j, rid in enumerate(ids[name]):
            d = tmp_path / "smoke" / "runs" / rid
            d.mkdir(parents=True)
            m = {"device": "cpu", "device_name": "x86_64 CPU, 1 torch threads", "versions": {"python": "3.11.7"},
                 "wall_seconds": 100.0 + j, "finished": f"2026-12-0{4 + j}T10:00:00+0000", "git_commit": "abc123def456",
                 "code_version": "2f3968d20bd6"}
            if i == 0:
                m["machine"] = recorded
            (d / "manifest.json").write_text(json.dumps(m))
    groups = made.groups_made("smoke", tmp_path)
    assert [g.name for g in groups] == names
    first, second = groups[0], groups[1]
    assert first.machine["cpu"] == "AMD EPYC" and made.short_machine(first.machine) == "AMD EPYC, avx2, 2 torch threads"
    assert made.short_machine(second.machine) == "CPU not recorded, 1 torch thread"
    assert first.wall_seconds == 100.0 + len(ids[names[0]]) - 1  # the batch's time: its longest run
    assert first.last_finished.startswith(f"2026-12-0{4 + len(ids[names[0]]) - 1}")
    assert all(g.finished == 0 for g in groups[2:])
    _, rows = made.groups_table(groups)
    assert [r[2] for r in rows].count("not in this edition yet") == len(names) - 2
    assert [on for _, on in made.machines(groups)] == [[names[0]], [names[1]]]


def test_the_page_shows_every_measured_verify_oldest_first(tmp_path):
    """Two verify records in benchmarks/measured: both appear, each group row with its own time
    and machine (a machine that differs from the shipped one is the reader's reason why)."""
    from mnistgen import parts

    def record(when: str, cpu: str, equal: bool) -> dict:
        here = {k: machine.UNKNOWN for k in machine.FIELDS} | {"cpu": cpu, "isa": "avx2" if "AMD" in cpu else "avx512"}
        group = {"group": "gan objective k=5", "equal": equal, "first_epoch_differs": None if equal else 1, "runs": 5,
                 "tensors": 8, "history_rows": 10, "metrics": 5, "seconds": 21.0, "here": here,
                 "shipped_machine": {k: machine.UNKNOWN for k in machine.FIELDS}}
        return {"profile": "paper", "date": when[:10], "time": when, "wall_seconds": 90.0, "groups": [group],
                "left_out": [], "code_version": "2f3968d20bd6"}

    for name, when, cpu, equal in [("2026-12-07T0340", "2026-12-07 03:40 UTC", "Intel(R) Xeon(R) Processor", True),
                                   ("2026-12-07T0113", "2026-12-07 01:13 UTC", "AMD EPYC", False)]:
        (tmp_path / f"verify-paper-{name}.json").write_text(json.dumps(record(when, cpu, equal)))
    records = parts.measured_all("verify-paper", tmp_path)
    assert [r["time"] for r in records] == ["2026-12-07 01:13 UTC", "2026-12-07 03:40 UTC"]
    assert parts.measured("verify-paper", tmp_path)["time"] == "2026-12-07 03:40 UTC"
    text = made.verify_summary(records)
    assert text.startswith("On AMD EPYC, avx2: 0 of 1 group retrained equal, bit for bit. On Intel Xeon, avx512: "
                           "1 of 1 group retrained equal, bit for bit.\n\nMeasured 2 times, each by training code")
    table = text[text.index("{table}"):]
    amd, intel = table.index("differs (histories from epoch 1)"), table.index("equal, bit for bit")
    assert amd < intel and "AMD EPYC, avx2" in table[:intel] and "Intel Xeon, avx512" in table[amd:]
    assert made.verify_summary([]) == "No `edition verify` has been measured for this profile yet."
