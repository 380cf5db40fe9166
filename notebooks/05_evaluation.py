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
# # Evaluation
#
# The paper judged its models by eye. This chapter measures the three models of the
# previous chapters the same way, with the metrics the field uses for MNIST, and puts the
# numbers beside published anchors ({numref}`tab-eval` is generated; no number in this chapter
# is typed by hand). The same numbers are written to `results/<profile>/metrics.json`, and the
# images each model is judged on to `results/<profile>/samples/<model>.npz`, so that any other
# tool can judge the same images.
#
# **The yardsticks.** Two classifiers of different families, each trained by this project on the
# GANs' training split, the first 50,000 training images (with random shifts of up to two
# pixels; the last 10,000 are the validation split every choice is made on), and cached like every other
# run, never a model being judged: a LeNet-like network {cite:p}`lecun1998` (two 5 × 5
# convolution + max-pool blocks, a 128-unit dense layer, ten outputs), the first and main
# yardstick, and a small VGG-style network (3 × 3 convolutions with batch norm, 16-16 and 32-32
# channels, a 128-unit dense layer). A metric computed in one network's features is that
# network's opinion; where the two disagree, neither number is the truth.
#
# **Seeds.** Every model is trained with each of the profile's seeds, and every number below is
# the mean ± standard deviation over seeds (sample sd, n stated), not the value of one run.
#
# **The metrics.**
# - *FID in classifier features* {cite:p}`heusel2017`: the Fréchet distance between Gaussians
#   fitted to the classifier's 128-d penultimate features of the generated images and of the
#   10,000 test images. The real-vs-real value (training images vs test images) is the floor.
# - *Inception Score* {cite:p}`salimans2016` with the same classifier:
#   $\exp \mathbb E_x \mathrm{KL}(p(y \mid x) \| p(y))$, between 1 and 10; high when every image
#   is classified confidently *and* the classes are balanced; as the literature reports it, the
#   mean over 10 splits of the samples.
# - *Parzen-window log-likelihood*, the protocol of {cite:t}`goodfellow2014`: a Gaussian kernel
#   of width $\sigma$ on every generated image, $\sigma$ chosen on a validation split (here the
#   last 10,000 training images, on which no GAN-family model trained; the VAE, trained as
#   {cite:t}`burda2015` train it, did), the mean log-likelihood of the test images (a seeded random subset,
#   the same for every model, where a profile scores fewer than 10,000) reported with its
#   standard error over images. It is known to be a poor estimate of likelihood in 784
#   dimensions {cite:p}`theis2016`: a model can score well by memorising and badly while
#   producing good samples, and the value depends on the number of samples. It is reported
#   because it is the paper's own measure, not because it ranks models reliably.
# - *VAE test NLL*: importance-sampled, from the VAE chapter.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
seeds = None  # training seeds per model (None: the profile's)
n_samples = None  # generated images per model (None: the profile value, 10000)
nll_k = None
nll_images = None
device = None

# %% tags=["remove-cell"]
# The parameters papermill was given, checked before any work: a misspelt name (papermill only
# warns of one), a type or a range stops here; a list passed with -p as a string is read as YAML.
from mnistgen import chapters

globals().update(chapters.checked("evaluation", globals()))

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import matplotlib.pyplot as plt
import numpy as np
import torch
from mnistgen import collapse, evaluate, plots, report
from mnistgen.config import make_config
from mnistgen.data import VALIDATION_SIZE, load_mnist, to_unit
from mnistgen.runs import DATA_ROOT, RESULTS_ROOT, atomic_write_json

ev = make_config("evaluation", profile, seeds=seeds, n_samples=n_samples, nll_k=nll_k,
                 nll_images=nll_images, device=device)
judges = evaluate.yardsticks(profile, ev)
names = list(judges)
first = judges[names[0]]
sweep, choice = evaluate.gan_sweep(profile, ev, first)
runs = {"gan": next(r["runs"] for r in sweep if (r["beta1"], r["batch_size"]) == (choice["beta1"], choice["batch_size"])),
        "acgan": evaluate.model_runs("acgan", profile, ev, first)}


def judged(rs):  # every seed x every yardstick (Parzen and NLL do not depend on the classifier)
    return {name: [evaluate.sample_metrics(r, ev, clf, parzen=(name == names[0])) for r in rs]
            for name, clf in judges.items()}


# The GANs are judged first: rendered beside the VAE chapter, this one measures them while the
# VAE trains, then waits for the VAE's runs.
by_judge = {m: judged(rs) for m, rs in runs.items()}
real = {name: evaluate.real_metrics(ev, clf) for name, clf in judges.items()}
runs["vae"] = evaluate.model_runs("vae", profile, ev)
by_judge["vae"] = judged(runs["vae"])
# The findings box reads the other chapters' groups too: the sweep, the follow-up groups.
from mnistgen import edition, findings, objective  # noqa: E402

long = findings.long_run(profile, sweep, report.setting_name(choice), ev.seeds, device)
obj_runs = {key: edition.group_runs(profile, g, device) for key, g in objective.long_groups(profile).items()}
other_acgan = findings.other_acgan_runs(profile, runs["acgan"], device)
read = [r for row in sweep if row["runs"] is not runs["gan"] for r in row["runs"]] + list(long.runs) + other_acgan \
    + [r for rs in obj_runs.values() if rs for r in rs]
display(Markdown(report.provenance("evaluation", profile, dict(seeds=seeds, n_samples=n_samples, nll_k=nll_k,
                                                                nll_images=nll_images, device=device),
                                   list(judges.values()) + [r for rs in runs.values() for r in rs] + read)))

# %% tags=["hide-input"]
for row, r in zip(by_judge["vae"][names[0]], runs["vae"]):
    row.update(evaluate.vae_nll(r, ev))
summary = {m: evaluate.summarize(m, list(ev.seeds), by_judge[m][names[0]], by_judge[m]) for m in runs}
real_keys = ("fid", "inception_score", "test_inception_score", "parzen_ll", "parzen_se")
results = {
    "profile": profile, "seeds": list(ev.seeds), "yardsticks": names,
    "classifiers": {n: {"test_accuracy": c.history[-1]["test_acc"], "run": c.path.name} for n, c in judges.items()},
    "classifier": {"test_accuracy": first.history[-1]["test_acc"], "run": first.path.name},
    "real": {**{k: real[names[0]][k] for k in real_keys},
             "by_yardstick": {n: {k: real[n][k] for k in ("fid", "inception_score")} for n in names}},
    **summary,
    "gan_sweep": [{k: v for k, v in row.items() if k != "runs"} for row in sweep],
    "gan_choice": choice,
    # Burda et al.'s model on the profile's schedule: one row per (objective, k), mean and sd over seeds
    "vae_iwae": [{k: v for k, v in row.items() if k != "runs"} for row in evaluate.iwae_table(profile, ev)],
    "runs": {m: [r.path.name for r in rs] for m, rs in runs.items()},
    # the digit each seed's judged samples hold most of (the share alone does not say which)
    "top_digits": {m: [int(np.argmax(x["class_histogram"])) for x in by_judge[m][names[0]]] for m in runs},
}
out = RESULTS_ROOT / profile
atomic_write_json(out / "metrics.json", results)
for m, rs in runs.items():
    evaluate.save_samples(rs[0], ev, out / "samples" / f"{m}.npz")
_ = report.glue_text("clf_test_acc", " and ".join(f"{100 * c.history[-1]['test_acc']:.2f}% ({n})" for n, c in judges.items()))


# %% [markdown]
# ## Results
#
# The classifiers that judge them reach {glue:text}`clf_test_acc` on the test set.
# Values are the mean ± standard deviation over {glue:text}`eval_n_seeds` training seeds
# ({glue:text}`eval_seeds`); every generated-image metric uses {glue:text}`eval_n_samples`
# samples per model and seed. FID and Inception Score are the first yardstick's
# ({numref}`tab-eval-yardsticks` gives both).
#
# ```{glue:md} eval_table
# :format: myst
# ```
#
# ```{glue:md} eval_reading
# :format: myst
# ```

# %% tags=["hide-input"]
def parzen(d):
    return report.cell(d, "parzen_ll", 0) + (f" (se {d['parzen_se']:.0f})" if d.get("parzen_se") is not None else "")


n = len(ev.seeds)
nll_se = float(np.mean([row["test_nll_se"] for row in by_judge["vae"][names[0]]]))  # one seed's, averaged
burda = report.published("burda2015")
gf = report.published("goodfellow2014")["rows"][0]
header = ["model", "FID ↓", "Inception Score ↑", "Parzen log-lik. (nats) ↑", "test NLL (nats) ↓",
          "class accuracy ↑", "seeds × samples"]
samples = lambda d: f"{n} × {d['n_samples']:,}"
gan_label = f"GAN (this report; β1 = {choice['beta1']}, batch {choice['batch_size']})"
rows = [
    ["real training images (floor / ceiling)", report.cell(real[names[0]], "fid"),
     report.cell(real[names[0]], "inception_score"), parzen(real[names[0]]), "", "", f"{real[names[0]]['n_samples']:,}"],
    [gan_label, report.cell(summary["gan"], "fid"), report.cell(summary["gan"], "inception_score"),
     parzen(summary["gan"]), "", "", samples(summary["gan"])],
    ["AC-GAN (this report)", report.cell(summary["acgan"], "fid"), report.cell(summary["acgan"], "inception_score"),
     parzen(summary["acgan"]), "", report.cell(summary["acgan"], "class_accuracy", 3), samples(summary["acgan"])],
    ["VAE (this report)", report.cell(summary["vae"], "fid"), report.cell(summary["vae"], "inception_score"),
     parzen(summary["vae"]),
     report.cell(summary["vae"], "test_nll") + f" (se over images {nll_se:.2f}; k = {summary['vae']['nll_k']:,}, "
     f"{summary['vae']['nll_images']:,} images)",
     "", samples(summary["vae"])],
    ["GAN, {cite:t}`goodfellow2014`", "", "", f"{gf['parzen_ll']} (se {gf['parzen_se']})", "", "", "10,000"],
    ["VAE, {cite:t}`burda2015`", "", "", "", f"{report.published_value(burda, 'test_nll', objective='vae', k=1):.2f} (k = 5,000)", "", ""],
    ["IWAE k = 50, {cite:t}`burda2015`", "", "", "",
     f"{report.published_value(burda, 'test_nll', objective='iwae', k=50):.2f} (k = 5,000)", "", ""],
]
caption = (f"Every model measured the same way: mean ± sd over {n} seeds. FID and Inception Score use the "
           f"project's first yardstick ({names[0]}), not Inception; the Parzen column gives the mean over "
           "seeds ± their sd and one seed's standard error over test images, as does the test NLL (the standard error "
           "averaged over seeds); published rows are from the "
           "cited papers with their own models and settings.")
table = f"```{{table}} {caption}\n:name: tab-eval\n\n" + report.markdown_table(header, rows) + "\n```"
report.glue_markdown("eval_table", table)
report.glue_text("eval_n_seeds", str(n))
report.glue_text("eval_seeds", ", ".join(map(str, ev.seeds)))
report.glue_text("eval_n_samples", f"{ev.n_samples:,}")
label = {"gan": "GAN", "acgan": "AC-GAN", "vae": "VAE"}
fids = {nm: {m: [x["fid"] for x in by_judge[m][nm]] for m in runs} for nm in names}


def ranking(nm):
    """'AC-GAN (151 ± 10) < GAN (206 ± 12, p = 0.004) < VAE (...)': by mean FID under yardstick nm,
    each step with Welch's test against the model before it."""
    order = sorted(runs, key=lambda m: np.mean(fids[nm][m]))
    parts = []
    for i, m in enumerate(order):
        text = report.mean_sd_text(float(np.mean(fids[nm][m])), float(np.std(fids[nm][m], ddof=1)) if n > 1 else None, 2)
        if i:
            p = report.seed_test(fids[nm][order[i - 1]], fids[nm][m])
            text += "" if p is None else (", p < 0.001" if p < 0.001 else f", p = {p:.2g}")
        parts.append(f"{label[m]} ({text})")
    return order, " < ".join(parts)


order, ranked = ranking(names[0])
gan_ll, real_ll = summary["gan"]["parzen_ll"], real[names[0]]["parzen_ll"]
vae_pub = report.published_value(burda, "test_nll", objective="vae", k=1)
reading = [
    f"**Reading the table.** By FID in the {names[0]} yardstick's features the models rank {ranked} "
    f"(p: Welch's t-test over seeds against the model before; below {report.ALPHA} is called a difference). "
    f"The real training images, at {report.cell(real[names[0]], 'fid')}, are the floor no model reaches.",
    f"The paper's own measure, the Parzen window, gives the GAN {report.cell(summary['gan'], 'parzen_ll', 0)} nats, "
    f"where {{cite:t}}`goodfellow2014` report {gf['parzen_ll']} for theirs and the real training images score "
    f"{real_ll:,.0f} under the same protocol here: the estimate rises as samples approach the data, so the "
    f"{real_ll - gan_ll:,.1f} nats between this GAN and real images ({real_ll:,.1f} against {gan_ll:,.1f}), not the gap to the published value, "
    "say how far its samples are from the data (the estimate itself ranks models poorly {cite:p}`theis2016`).",
    f"The VAE's test NLL, {report.cell(summary['vae'], 'test_nll')} nats, is a bound of the same kind as "
    f"{{cite:t}}`burda2015`'s {vae_pub:.2f} for their VAE (another architecture, "
    f"{make_config('iwae', 'burda').epochs:,} epochs; the VAE chapter trains theirs on this profile's schedule).",
]
report.glue_markdown("eval_reading", "\n\n".join(reading))
for m in ("gan", "acgan", "vae"):
    print(m, "FID per seed:", ", ".join(f"{r['fid']:.2f}" for r in summary[m]["per_seed"]))

# %% [markdown]
# ## Two yardsticks
#
# {numref}`tab-eval-yardsticks` repeats the judgement in the features of the second classifier.
# Each FID lives in its own feature space (its scale is that network's), so only comparisons
# within one column mean anything. {glue:text}`eval_rank_sentence` The AC-GAN's samples show
# the requested digit in {glue:text}`eval_acc1` of cases for the first and
# {glue:text}`eval_acc2` for the second.
#
# ```{glue:md} eval_yardsticks
# :format: myst
# ```

# %% tags=["hide-input"]
header = ["model"] + [f"{k} ({nm})" for nm in names for k in ("FID ↓", "IS ↑", "class acc. ↑")]
rows = [["real training images"] + [c for nm in names for c in (report.cell(real[nm], "fid"),
                                                                 report.cell(real[nm], "inception_score"), "")]]
for m in runs:
    by = summary[m]["by_yardstick"]
    rows.append([label[m]] + [c for nm in names for c in (report.cell(by[nm], "fid"), report.cell(by[nm], "inception_score"),
                                                           report.cell(by[nm], "class_accuracy", 3))])
caption = f"FID, Inception Score and AC-GAN class accuracy under each yardstick: mean ± sd over {n} seeds."
report.glue_markdown("eval_yardsticks", f"```{{table}} {caption}\n:name: tab-eval-yardsticks\n\n"
                     + report.markdown_table(header, rows) + "\n```")
orders = {nm: ranking(nm) for nm in names}
# a step of a ranking is a difference only where Welch's test over seeds says so (p < ALPHA)
ties = [f"{label[a]} and {label[b]} under {nm}" for nm in names for a, b in zip(orders[nm][0], orders[nm][0][1:])
        if report.verdict(fids[nm][a], fids[nm][b], lower_is_better=True) == "indistinguishable"]
same_order = orders[names[0]][0] == orders[names[-1]][0]
if same_order and not ties:
    sentence = (f"The two yardsticks rank the models the same way by FID: {orders[names[0]][1]} under "
                f"{names[0]}, {orders[names[-1]][1]} under {names[-1]}.")
elif same_order:
    sentence = (f"The two yardsticks put the models' mean FIDs in the same order, {orders[names[0]][1]} under "
                f"{names[0]} and {orders[names[-1]][1]} under {names[-1]}, but not every step is a measurable "
                f"difference (p ≥ {report.ALPHA}): {'; '.join(ties)}.")
else:
    pos = {nm: {m: i for i, m in enumerate(orders[nm][0])} for nm in names}
    swapped = [f"{label[a]} and {label[b]}" for i, a in enumerate(runs) for b in list(runs)[i + 1:]
               if (pos[names[0]][a] < pos[names[0]][b]) != (pos[names[-1]][a] < pos[names[-1]][b])]
    sentence = (f"The order flips between the yardsticks: {orders[names[0]][1]} under {names[0]}, but "
                f"{orders[names[-1]][1]} under {names[-1]} ({' and '.join(swapped)} swap places): which of "
                "those makes the better images is the yardstick's opinion, not a finding about the models.")
report.glue_text("eval_rank_sentence", sentence)
report.glue_text("eval_acc1", report.cell(summary["acgan"]["by_yardstick"][names[0]], "class_accuracy", 3))
_ = report.glue_text("eval_acc2", report.cell(summary["acgan"]["by_yardstick"][names[-1]], "class_accuracy", 3))


# %% [markdown]
# Real images' Inception Score under the first yardstick ({glue:text}`real_test_is` for the test
# images, the table's ceiling row for the training images) is what a model's samples can hope for
# in these features (10 would need every image classified
# with certainty and every class exactly as frequent). Inception Scores for MNIST published
# elsewhere come from other classifiers and are not comparable with these.
#
# ## The three models side by side
#
# {numref}`fig-eval-side` shows the images each model is judged on: the first samples of seed 0
# of each, drawn the way the metrics above draw them (the AC-GAN asked for the digits 0 to 9 in
# turn, the VAE's Bernoulli means).
#
# ```{glue:figure} eval_side
# :name: fig-eval-side
#
# Twenty samples of seed 0 of each model, from the evaluation's noise seed; top to bottom: GAN,
# AC-GAN, VAE.
# ```
#
# ## Mode dropping
#
# An unconditional generator can win the game by covering only part of the data. The
# first yardstick's predicted labels for each model's samples ({numref}`fig-eval-classes`) make
# that visible: the data's proportions are close to uniform (dashed line).
#
# ```{glue:figure} eval_classes
# :name: fig-eval-classes
#
# Share of each model's samples assigned to each digit by the first yardstick: mean over seeds,
# error bars ± one sd over seeds; dashed: 1/10.
# ```
#
# {glue:text}`eval_modes`

# %% tags=["hide-input"]
side = {m: evaluate.generate(runs[m][0], 20)[0] for m in runs}
report.glue_figure("eval_side", plots.image_rows([side[m][i * 10:(i + 1) * 10] for m in runs for i in range(2)],
                                                 [f"{label[m]}" for m in runs for _ in range(2)]), profile)
report.glue_number("real_test_is", real[names[0]]["test_inception_score"], 2)
fig, ax = plt.subplots(figsize=(plots.COLUMN_IN, 3.4))
width = 0.2
mean_shares, shares_by = {}, {}
for i, (name, hists) in enumerate([("real (train)", [real[names[0]]["class_histogram"]])] +
                                  [(label[m], [x["class_histogram"] for x in by_judge[m][names[0]]]) for m in runs]):
    shares = np.array([np.asarray(h, float) / np.sum(h) for h in hists])
    err = shares.std(0, ddof=1) if len(shares) > 1 else None
    ax.bar(np.arange(10) + (i - 1.5) * width, shares.mean(0), width, yerr=err, capsize=2, label=name)
    mean_shares[name], shares_by[name] = shares.mean(0), shares
ax.axhline(0.1, color="gray", ls="--", lw=1)
ax.set_xticks(range(10))
ax.set_xlabel("digit predicted by the classifier")
ax.set_ylabel("share of samples")
ax.legend(frameon=False, ncol=2)
fig.tight_layout()
report.glue_figure("eval_classes", fig, profile)


def off_share(model):
    """The digits a model draws outside collapse.SHARE_RULE of the real data's share (t-test over seeds), as text."""
    return collapse.off_shares(model, shares_by[model], mean_shares["real (train)"])


_ = report.glue_text("eval_modes", "Against the training images' own shares (the first bars; a digit counts as drawn too "
                     f"rarely or too often where its mean share is under {collapse.SHARE_LOW} or over {collapse.SHARE_HIGH} of "
                     "the data's and a one-sample "
                     f"t-test over the {len(ev.seeds)} seeds puts it away from the data's at the 5 % level), "
                     + "; ".join(off_share(label[m]) for m in runs) + ". The AC-GAN is asked for every "
                     "digit equally often, so its shares measure how often the yardstick agrees with the request.")

# %% [markdown]
# ## Do the GANs copy their training data?
#
# A generator that memorised training images would score well on most of these metrics. For every
# seed of the GAN and the AC-GAN, {glue:text}`mem_what` are matched with their nearest image among
# the 50,000 training images the model trained on, in pixels and in the first yardstick's
# features, and so are {glue:text}`mem_test_what`, which no model trained on: a sample no nearer
# than a new real digit is no copy. {glue:text}`mem_gan` {glue:text}`mem_acgan`
# {numref}`fig-eval-nn` shows the closest pairs over all seeds, the likeliest copies, beside the
# closest pairs of real test and training images for scale.
#
# ```{glue:figure} eval_nn
# :name: fig-eval-nn
#
# The likeliest copies: over all seeds, the samples nearest to a training image, each above that
# training image, by pixel distance and by distance in the first yardstick's features; last, for
# scale, the real test images nearest to a training image. Below each pair: its seed (s) or "t"
# for a test image, and the distance (pixels in [0, 1]; features in the yardstick's units).
# ```

# %% tags=["hide-input"]
from mnistgen import memorisation  # noqa: E402

train = load_mnist(DATA_ROOT, train=True).split(VALIDATION_SIZE)[0]  # what the GANs trained on
n_mem = ev.n_samples  # every judged sample
test = load_mnist(DATA_ROOT, train=False)
test_pick = torch.randperm(len(test.images), generator=torch.Generator().manual_seed(0))[:n_mem]
_, f_train = evaluate.classify(first.models["net"], train.images)
_, f_test = evaluate.classify(first.models["net"], test.images[test_pick])
mem, mem_images = {}, {}
for m in ("gan", "acgan"):
    imgs = [evaluate.generate(r, n_mem)[0] for r in runs[m]]
    mem_images[m] = imgs
    mem[m] = memorisation.measure([to_unit(x) for x in imgs], [evaluate.classify(first.models["net"], x)[1] for x in imgs],
                                  to_unit(train.images), f_train, to_unit(test.images[test_pick]), f_test)
report.glue_text("mem_what", f"all {n_mem:,} of its judged samples")
report.glue_text("mem_test_what", "all 10,000 real test images" if len(test_pick) == len(test.images)
                 else f"{len(test_pick):,} random real test images")
report.glue_text("mem_gan", memorisation.sentence(mem["gan"], "GAN", n_mem))
report.glue_text("mem_acgan", memorisation.sentence(mem["acgan"], "AC-GAN", n_mem))
panels = []
for m, how in (("gan", "closest"), ("acgan", "closest"), ("gan", "closest_feature"), ("acgan", "closest_feature")):
    pairs_ = getattr(mem[m], how)
    panels.append((f"{label[m]} samples above their nearest training images, by "
                   + ("pixel distance" if how == "closest" else "distance in the yardstick's features"),
                   torch.stack([mem_images[m][s][j] for _, s, j, _ in pairs_]), train.images[[i for *_, i in pairs_]],
                   [f"s{runs[m][s].cfg.seed}: {d:.1f}" for d, s, _, _ in pairs_]))
t_pairs = mem["gan"].test_closest
panels.append(("For scale: real test images above their nearest training images, by pixel distance",
               test.images[test_pick][[j for _, j, _ in t_pairs]], train.images[[i for *_, i in t_pairs]],
               [f"t: {d:.1f}" for d, _, _ in t_pairs]))
report.glue_figure("eval_nn", plots.pair_panels(panels), profile)
print("mean pixel distance to the nearest training image, per seed: GAN",
      ", ".join(f"{d:.2f}" for d in mem["gan"].pixel), "| AC-GAN", ", ".join(f"{d:.2f}" for d in mem["acgan"].pixel),
      f"| test images {mem['gan'].test_pixel:.2f}")

# %% [markdown]
# ## What this chapter showed
#
# {glue:text}`eval_summary` {glue:text}`find_paper`

# %% tags=["hide-input"]
# What the chapter showed, and the findings the introduction quotes (glued here, pasted there;
# also written to metrics.json, where `mnistgen summary` prints them for the README).
found_text: dict[str, str] = {}
epochs = runs["gan"][0].cfg.epochs
paper_epochs = make_config("gan", "paper").epochs
# "still improving" is the trend of a line through the last third of each seed's checks, tested over seeds

try:
    gan_trend = findings.trend([r.history for r in runs["gan"]])
    trend = {"falling": "; the GAN's validation FID was still falling over the last third of its checks "
                        f"({gan_trend.first_epoch}–{gan_trend.last_epoch}), so it is not converged",
             "rising": "; the GAN's validation FID was rising over the last third of its checks "
                       f"({gan_trend.first_epoch}–{gan_trend.last_epoch})",
             "flat": "; the GAN's validation FID had no measurable trend over the last third of its checks "
                     f"({gan_trend.first_epoch}–{gan_trend.last_epoch})"}[gan_trend.direction]
    trend += (f" (a line fitted per seed rises for {gan_trend.rising} of {len(gan_trend.slopes)} seeds; one-sample "
              f"t-test: p = {gan_trend.p:.2g})" if gan_trend.p is not None else "")
except ValueError:  # fewer than three quality checks: no trend
    trend = ""
short = epochs < paper_epochs
acgan_epochs = runs["acgan"][0].cfg.epochs
build_text = (f"This build is the {profile} profile: the GAN "
                 + ("and the AC-GAN " if acgan_epochs == epochs else "") + f"trained for {epochs} epochs"
                 + (f" (the paper: {paper_epochs})" if short else "")
                 + (f", the AC-GAN for {acgan_epochs}" if acgan_epochs != epochs else "")
                 + f", the VAE for {runs['vae'][0].cfg.epochs}, each with seeds {', '.join(map(str, ev.seeds))}"
                 + ".")  # the pick's trend is a finding of its own (find_trend)
follow, iwae_cfg = make_config("followup", profile), make_config("iwae", profile)
extra = ([f"β1 = {follow.long_beta1}, batch {follow.long_batch_size} again for {follow.long_epochs} epochs"] if follow.long_epochs else []) + \
    ([f"the objective chapter's four settings for {follow.objective_epochs} epochs"] if follow.objective_epochs else []) + \
    ([f"the AC-GAN at β1 = {follow.acgan_beta1} for {acgan_epochs} epochs"] if follow.acgan_beta1 is not None else []) + \
    [f"Burda et al.'s IWAE rows for {iwae_cfg.epochs} epochs with seeds "
     f"{', '.join(map(str, make_config('iwae_table', profile).seeds))}"]
build_text += " Beside them it trains " + "; ".join(extra) + "."

found = findings.sweep_findings(sweep, report.setting_name(choice))
found_text["sweep"] = report.glue_text("find_sweep", f"The paper leaves Adam's β1 and the batch size open; on the validation "
                 f"FID, {found['pick']} {found['factors_short']}")
found_text["trend"] = report.glue_text("find_trend", found["trend"])
found_text["long"] = report.glue_text("find_long", long.text)
acgan_vs = report.verdict(fids[names[0]]["acgan"], fids[names[0]]["gan"], lower_is_better=True)
found_text["gan"] = report.glue_text("find_gan", f"The GAN's FID in the {names[0]} yardstick's features is {report.cell(summary['gan'], 'fid')} "
                 f"(real training images: {report.cell(real[names[0]], 'fid')}); its Parzen estimate "
                 f"{report.cell(summary['gan'], 'parzen_ll', 0)} nats (real training images: {real_ll:,.0f} under the "
                 f"same protocol; Goodfellow et al. (2014) report {gf['parzen_ll']} for their GAN).")
acgan_cfg, gan_cfg = runs["acgan"][0].cfg, runs["gan"][0].cfg
label_pairs = findings.label_pairs(profile, sweep, runs["acgan"], device)
_, like = findings.label_effect(label_pairs)
other = "" if (acgan_cfg.beta1, acgan_cfg.batch_size) == (gan_cfg.beta1, gan_cfg.batch_size) else ", which differs in more than the labels"
found_text["acgan"] = report.glue_text("find_acgan", f"Did the labels help? {findings.label_answer(label_pairs)} {like} "
                 f"Against the GAN the report picked (β1 = {gan_cfg.beta1}, batch {gan_cfg.batch_size}{other}), the AC-GAN "
                 f"(β1 = {acgan_cfg.beta1}, batch {acgan_cfg.batch_size}) has "
                 + {"better": "a lower test FID,", "worse": "a higher test FID,",
                    "indistinguishable": "a test FID not measurably different,"}[acgan_vs]
                 + f" {report.cell(summary['acgan'], 'fid')} against {report.cell(summary['gan'], 'fid')} "
                 f"({report.p_text(fids[names[0]]['acgan'], fids[names[0]]['gan'])}); an independent classifier reads the "
                 f"requested digit in {report.cell(summary['acgan'], 'class_accuracy', 3)} of its samples.")
found_text["vae"] = report.glue_text("find_vae", f"The VAE's importance-sampled test NLL is {report.cell(summary['vae'], 'test_nll')} nats "
                 f"(k = {summary['vae']['nll_k']:,}, " + ("all 10,000 test images)." if summary['vae']['nll_images'] >= 10_000
                                                            else f"{summary['vae']['nll_images']:,} random test images)."))
found_text["rank"] = report.glue_text("find_rank", sentence)
if obj_runs and all(rs is not None for rs in obj_runs.values()):
    oc = next(iter(obj_runs.values()))[0].cfg
    found_text["objective"] = report.glue_text("find_objective", objective.long_findings(
        objective.loss_runs(obj_runs, first), oc.epochs, oc.beta1, oc.batch_size).short)
else:
    report.glue_text("find_objective", "Which generator loss draws the better samples once trained longer is a "
                     "question of follow-up groups not in this edition" + (" yet." if obj_runs else "."))
found_text["copy"] = report.glue_text("find_copy", memorisation.copy_finding({label[m]: mem[m] for m in mem}, n_mem))
from mnistgen.bundle import EDITIONS_DIR  # noqa: E402 - where shipped editions live

paper_scale = (f"{make_config('gan', 'paper').epochs} GAN epochs, "
               f"{len(make_config('evaluation', 'paper').seeds)} seeds")
if profile == "paper":
    n_iwae = len(make_config("iwae_table", "paper").seeds)
    where = (f"This is the paper edition: the paper's schedule, every model with each of the profile's "
             f"{len(ev.seeds)} seeds (the IWAE rows with {n_iwae}).")
elif (EDITIONS_DIR / "paper.tar.gz").is_file():
    where = (f"The paper's scale ({paper_scale}) is the paper edition, shipped with the code: "
             "make book PROFILE=paper renders it without training.")
else:  # trained on CPU a group at a time (hours each), shipped in parts: say how far it is
    from mnistgen import edition, parts  # noqa: E402

    shipped = parts.read_parts("paper")["parts"]
    n_groups = len(edition.profile_groups("paper", make_config("evaluation", "paper")))
    where = (f"The paper's scale ({paper_scale}) is the paper edition, trained on CPU a group of runs at a time "
             f"and shipped in parts: {len(shipped)} of {n_groups} groups of runs shipped so far"
             + (f" ({', '.join(shipped)})" if shipped else "") + " (`python -m mnistgen edition status` lists them); "
             "these numbers are the " + profile + " profile's.")
report.glue_text("find_paper", where)
# the findings box's first line; outside the paper edition it also says where that edition is
found_text["build"] = report.glue_text("find_build", build_text + ("" if profile == "paper" else " " + where))
report.glue_text("find_rank_short", ("the two rank the models the same way" if same_order and not ties else
                                     "the two put the mean FIDs in the same order, though not every step is a "
                                     "measurable difference: " + "; ".join(ties) if same_order else
                                     "here they order the models differently"))
report.glue_text("find_vae_modes", off_share("VAE").removeprefix("the VAE draws "))
_ = report.glue_text("eval_summary", sentence + " " + f"The AC-GAN draws the requested digit in "
                 f"{report.cell(summary['acgan'], 'class_accuracy', 3)} of its samples; the VAE's test NLL is "
                 f"{report.cell(summary['vae'], 'test_nll')} nats. " + found_text["copy"] + " "
                 + (f"These are numbers after {epochs} of the paper's {paper_epochs} epochs{trend}." if short else ""))
results["findings"] = found_text
atomic_write_json(out / "metrics.json", results)
