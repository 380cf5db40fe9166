# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # How this edition was made
#
# Where, when and by which code every run behind this book was trained, how to train one group
# of it again, and what happened when that was done: read from the runs' own manifests and the
# measured `mnistgen edition verify`, not typed.
#
# {glue:md}`made_summary`

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml

# %% tags=["remove-cell"]
# The parameters papermill was given, checked before any work.
from mnistgen import chapters

globals().update(chapters.checked("edition", globals()))

# %% tags=["hide-input", "nbval-ignore-output"]
from mnistgen import made, machine, parts, report
from mnistgen.codeversion import code_version
from mnistgen.runs import installed_bundle

groups = made.groups_made(profile)
done = [g for g in groups if g.finished]
total = sum(g.wall_seconds for g in done)
versions = sorted({v for g in done for v in g.code_versions})
commits = sorted({c for g in done for c in g.commits})
bundle = installed_bundle(profile)
source = (f"installed from {report.md_code(bundle['source'].rsplit('/', 1)[-1])} (trained elsewhere: the machine "
          "that rendered this page trained none of it)" if bundle else "trained by the machine that rendered it")
report.glue_markdown("made_summary", (
    f"**This edition** (profile `{profile}`) is {len(done)} of {len(groups)} groups of runs, "
    f"{sum(g.finished for g in done)} runs and {made.hours(total)} of training in all (a group's seeds train as one "
    f"batch, timed once), {source}. Training code version " + (", ".join(report.md_code(v) for v in versions) or "—")
    + f" (this checkout's: {report.md_code(code_version())}); the groups were trained at "
    + (f"{len(commits)} commits of the project (the table below)." if len(commits) > 1 else
       f"commit {report.md_code(commits[0])}." if commits else "no commit yet.")))
report.glue_markdown("made_groups", report.table_block(
    "tab-made-groups", f"Each group of runs of the {profile} profile: the machine its runs' manifests record, the "
    "training time of its batch of seeds, the day its last run finished and the commit it was trained at.",
    *made.groups_table(groups)))
report.glue_markdown("made_machines", "\n".join(
    f"- {report.md_text(desc)}: {', '.join(report.md_text(n) for n in names)}" for desc, names in made.machines(groups)))
_ = report.glue_markdown("made_here", report.md_text(machine.describe(machine.this_machine())))

# %% tags=["hide-input"]
verified = parts.measured_all(f"verify-{profile}")
_ = report.glue_markdown("made_verify", made.verify_summary(verified))

# %% [markdown]
# ## Where and when each group was trained
#
# The machine is what the runs' manifests record. Runs finished before the project recorded the
# CPU say "CPU not recorded", and only what they did record (the torch threads, the library
# versions) is shown for them.
#
# ```{glue:md} made_groups
# :format: myst
# ```
#
# The machines in full:
#
# ```{glue:md} made_machines
# :format: myst
# ```
#
# ## Training a group again
#
# Every group is one command, into the results folder (`MNISTGEN_RESULTS` names another); its
# part is exported beside the others, and the edition is assembled from them:
#
# ```bash
# # the groups, shipped or not
# mnistgen edition status --profile paper
# # one group (its judge comes along), its part, the edition
# mnistgen train all --profile paper --group "vae z_dim=2"
# mnistgen bundle export --profile paper --group "vae z_dim=2"
# mnistgen edition assemble --profile paper
# ```
#
# ## Checking that this code makes them
#
# `mnistgen edition verify` retrains the cheapest group of every model family (or the groups it
# is given) into a scratch folder and compares them with the shipped parts: every shipped tensor
# bit for bit, every history row field by field (wall times aside), every cached metric. The exit
# status says whether all were equal. Bitwise equality needs the same kernels: another vector
# instruction set, thread count or library version can change the last bits, and then the
# metrics' differences are given in units of the seeds' spread.
#
# ```{glue:md} made_verify
# :format: myst
# ```
#
# ## The environment
#
# `make` installs every package, transitive ones included, from `requirements.lock` with
# `pip install --require-hashes`: a download whose SHA-256 is not the lock's is refused, so the
# same command installs the same stack next year (`make lock` regenerates the lock from
# `pyproject.toml`'s pins). The machine that rendered this page: {glue:md}`made_here`
