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
# # The AC-GAN extension
#
# The paper proposes, without building it, to "train the discriminator to also classify the
# samples": an auxiliary-classifier GAN {cite:p}`odena2017` whose discriminator ends in a softmax
# over the ten digits. This chapter builds it on the paper's networks and measures whether the
# labels help.
#
# **Model.** The discriminator keeps the paper's trunk (784 → 256 → 256, LeakyReLU(0.2)) and
# feeds the same 256 features to two heads: the real/fake logit (sigmoid, as before) and 10 class
# logits (softmax, applied once inside the cross-entropy). The generator is the paper's
# (64 → 256 → 256 → 784), fed $z \odot e_c$: the noise multiplied elementwise by a learned
# 64-dimensional embedding of the requested class $c$.
#
# **Why multiplicative conditioning.** The first version of this chapter fed the generator the
# concatenation $[z, e_c]$. With the paper's optimiser settings it collapsed within the quick
# profile's epochs: $D(G(z, c))$ fell towards 0, the generator drew one noisy blob per class, and
# D's class head still read the requested class off those blobs while the independent classifier
# did not. The generator had learned to encode the label in a code that the jointly trained
# class head decoded, and to ignore $z$. With $z \odot e_c$ every input unit carries both noise
# and class, so $z$ cannot be ignored; the curves and the accuracy table below show how this
# version trains (the collapsed run is in the project's history, commit `50e8b35`).
#
# **Objective** {cite:p}`odena2017`. With $L_S$ the log-likelihood of the correct source
# (real or generated) and $L_C$ that of the correct class,
#
# $$
# \begin{aligned}
# L_S &= \mathbb E[\log P(S{=}\text{real} \mid x_{real})] + \mathbb E[\log P(S{=}\text{fake} \mid G(z, c))],\\
# L_C &= \mathbb E[\log P(C{=}c \mid x_{real})] + \mathbb E[\log P(C{=}c \mid G(z, c))],
# \end{aligned}
# $$ (eq-acgan)
#
# D maximises $L_S + L_C$; G maximises $L_C$ and, as in the rest of this report, the
# non-saturating form of its source term, $\mathbb E \log P(S{=}\text{real} \mid G(z, c))$.
# Optimiser, learning rate, $k$ and epochs are the GAN's; Adam $\beta_1 = 0.5$ and batch size 128 are the
# profile's (the AC-GAN is not swept), so where the GAN chapter's sweep picks another setting, the
# comparison with the picked GAN differs in more than the labels; the last section therefore also
# compares each AC-GAN with the GAN of the same $\beta_1$ and batch size.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
epochs = None  # None: the profile value
batch_size = None
lr = None
seeds = None  # None: the profile's seeds (trained as one batch)
device = None

# %% tags=["remove-cell"]
# The parameters papermill was given, checked before any work: a misspelt name (papermill only
# warns of one), a type or a range stops here; a list passed with -p as a string is read as YAML.
from mnistgen import chapters

globals().update(chapters.checked("acgan", globals()))

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import numpy as np
import torch
from mnistgen import evaluate, plots, report
from mnistgen.config import make_config
from mnistgen.steps import updates
from mnistgen.train import fixed_noise

params = dict(epochs=epochs, batch_size=batch_size, lr=lr, seeds=seeds, device=device)
ev = make_config("evaluation", profile, seeds=seeds, device=device)
judges = evaluate.yardsticks(profile, ev)
judge = next(iter(judges.values()))  # the first yardstick scores samples during training
runs = evaluate.model_runs("acgan", profile, ev, judge, epochs=epochs, batch_size=batch_size, lr=lr)
run, G, cfg = runs[0], runs[0].models["G"], runs[0].cfg
sweep, choice = evaluate.gan_sweep(profile, ev, judge)  # the GAN of the previous chapter, for comparison
gan_runs = next(r["runs"] for r in sweep if (r["beta1"], r["batch_size"]) == (choice["beta1"], choice["batch_size"]))
report.glue_text("acgan_n_seeds", str(len(ev.seeds)))
from mnistgen import findings  # noqa: E402 - the like-for-like comparison's runs are this page's too

like_runs = findings.other_acgan_runs(profile, runs, device) + [
    r for row in sweep if row["batch_size"] == cfg.batch_size and row["runs"] is not gan_runs for r in row["runs"]]
display(Markdown(report.provenance("acgan", profile, params, list(judges.values()) + runs + gan_runs + like_runs)))

# %% [markdown]
# Every number below is a mean ± standard deviation over {glue:text}`acgan_n_seeds` seeds,
# trained together; image grids show seed 0.
#
# ## Samples by class
#
# In {numref}`fig-acgan-grid` each row asks for one digit and each column uses one noise vector.
# If the generator separates *what* (the class) from *how* (the noise), a column shares its
# style (slant, stroke width) across all ten digits.
#
# ```{glue:figure} acgan_grid
# :name: fig-acgan-grid
# :figwidth: 520px
#
# $G(z_j, c)$ of seed 0 for classes $c = 0, \dots, 9$ (rows) and ten fixed noise vectors $z_j$
# (columns).
# ```

# %% tags=["hide-input"]
z = fixed_noise(10, cfg.z_dim, run.device)
with torch.no_grad():
    rows = [G(z, torch.full((10,), c, device=run.device)) for c in range(10)]
report.glue_figure("acgan_grid", plots.image_rows(rows, [str(c) for c in range(10)], size=5.2), profile)

# %% [markdown]
# **Try it.** Below, seed 0's generator runs in this page: for one noise vector (the first column
# of {numref}`fig-acgan-grid` to begin with; "new z" draws another) it draws all ten digits, and
# the picker shows one of them large. Without JavaScript, and on paper, the grid above stands in
# for it.

# %% tags=["hide-input"]
from mnistgen import widgets

widgets.digit_picker(G, run, profile, z[:1])

# %% [markdown]
# ## Class interpolation
#
# Holding $z$ fixed and moving the class embedding linearly from one digit's to another's
# morphs one digit into the other in the same style ({numref}`fig-acgan-morph`).
#
# ```{glue:figure} acgan_morph
# :name: fig-acgan-morph
#
# Seed 0. Fixed $z$ per row; the embedding moves from $e_a$ to $e_b$ in 10 steps.
# ```

# %% tags=["hide-input"]
t = torch.linspace(0, 1, 10, device=run.device)
pairs = [(0, 6), (1, 7), (3, 8), (4, 9), (5, 2)]
rows = []
with torch.no_grad():
    table = G.embed.weight[0]  # seed 0's class embeddings
    for i, (a, b) in enumerate(pairs):
        rows.append(G.forward_embedded(z[i].expand(10, -1), plots.lerp(table[a], table[b], t)))
report.glue_figure("acgan_morph", plots.image_rows(rows, [f"{a} → {b}" for a, b in pairs]), profile)

# %% [markdown]
# ## Training
#
# Besides the GAN's curves, {numref}`fig-acgan-curves` follows the accuracy of D's class head on
# real and on generated batches. Both heads learn together: G is rewarded for making its samples
# classifiable, D's head for classifying real digits, and accuracy on real digits measures how
# well the auxiliary head learns MNIST itself. {glue:text}`acgan_acc_course`
# {numref}`fig-acgan-quality` follows the samples' quality under the first yardstick during
# training, as for the GAN.
#
# ```{glue:figure} acgan_curves
# :name: fig-acgan-curves
#
# Top: losses. Middle: mean $D(x)$ and $D(G(z, c))$ with the equilibrium 1/2. Bottom: accuracy of
# D's class head on real and generated batches. Every seed (thin) and their mean (thick).
# ```
#
# ```{glue:figure} acgan_quality
# :name: fig-acgan-quality
#
# FID (log scale), Inception Score and the most frequent digit's share of AC-GAN samples (equal
# numbers of every requested digit) during training, every seed and their mean.
# ```

# %% tags=["hide-input"]
histories = [r.history for r in runs]
fig = plots.curves(histories, [[("d_loss", "D loss"), ("g_loss", "G loss")],
                               [("d_real", "D(x), real"), ("d_fake", "D(G(z, c)), generated")],
                               [("acc_real", "real"), ("acc_fake", "generated")]],
                   ["loss (nats)", "mean discriminator output", "class-head accuracy"],
                   hlines={1: (0.5, "equilibrium, 1/2")})
report.glue_figure("acgan_curves", fig, profile)
acc = lambda key, i: report.mean_sd_text(float(np.mean([h[i][key] for h in histories])),
                                         float(np.std([h[i][key] for h in histories], ddof=1)) if len(histories) > 1 else None, 2)
first_fake, first_real = (np.mean([h[0][k] for h in histories]) for k in ("acc_fake", "acc_real"))
report.glue_text("acgan_acc_course", f"After the first epoch the head classified {acc('acc_fake', 0)} of the generated "
                 f"batches correctly and {acc('acc_real', 0)} of the real ones ("
                 + ("generated images were the easier" if first_fake > first_real else "real images were the easier")
                 + f"); after the last, {acc('acc_fake', -1)} and {acc('acc_real', -1)}.")
report.glue_figure("acgan_quality", plots.quality_curves({"AC-GAN": histories}), profile)

# %% [markdown]
# ## Do the samples show the requested digit?
#
# D's own class head is not a fair judge of G: the two were trained together. Two independent
# classifiers of different families (the evaluation chapter's yardsticks, test accuracy
# {glue:text}`clf_accs`) label {glue:text}`acgan_n` samples of each seed, an equal number per
# requested class; {numref}`tab-acgan-acc` gives the fraction each labels as requested. Overall:
# {glue:text}`acgan_acc` under the first, {glue:text}`acgan_acc2` under the second.
#
# ```{glue:md} acgan_acc_table
# :format: myst
# ```

# %% tags=["hide-input"]
per_judge = {name: [evaluate.sample_metrics(r, ev, clf, parzen=(i == 0)) for r in runs]
             for i, (name, clf) in enumerate(judges.items())}
names = list(judges)
m = per_judge[names[0]]
report.glue_text("clf_accs", " and ".join(f"{100 * judges[n].history[-1]['test_acc']:.2f}% ({n})" for n in names))
report.glue_text("acgan_n", f"{m[0]['n_samples']:,}")
report.glue_mean_sd("acgan_acc", [x["class_accuracy"] for x in m], 3)
report.glue_mean_sd("acgan_acc2", [x["class_accuracy"] for x in per_judge[names[-1]]], 3)
per_class = {n: np.array([x["class_accuracy_per_class"] for x in per_judge[n]]) for n in names}
overall = {n: [x["class_accuracy"] for x in per_judge[n]] for n in names}
rows = [[str(c)] + [report.mean_sd_text(float(per_class[n][:, c].mean()), float(per_class[n][:, c].std(ddof=1))
                                        if len(runs) > 1 else None, 3) for n in names] for c in range(10)]
rows.append(["all"] + [report.mean_sd_text(float(np.mean(overall[n])), float(np.std(overall[n], ddof=1))
                                           if len(runs) > 1 else None, 3) for n in names])
caption = (f"Share of AC-GAN samples each yardstick labels as the requested digit: mean ± sd over "
           f"{len(runs)} seeds, per digit and overall.")
_ = report.glue_markdown("acgan_acc_table", f"```{{table}} {caption}\n:name: tab-acgan-acc\n\n"
                     + report.markdown_table(["requested digit"] + [f"{n} agrees" for n in names], rows)
                     + "\n```")

# %% [markdown]
# ## Did the labels help?
#
# The same measurements for the previous chapter's GAN (the setting its sweep picked, the same
# seeds, epochs and number of samples; details of each metric in the evaluation chapter): lower
# FID is better, higher Inception Score is better (at most 10). {glue:text}`acgan_confound`
#
# ```{glue:md} acgan_vs_gan
# :format: myst
# ```
#
# {glue:text}`acgan_cross`

# %% tags=["hide-input"]
mg = [evaluate.sample_metrics(r, ev, judge) for r in gan_runs]
both = {name: evaluate.summarize(model, list(ev.seeds), rows_, {})
        for name, model, rows_ in (("GAN", "gan", mg), ("AC-GAN", "acgan", m))}
top = {"GAN": [int(np.argmax(x["class_histogram"])) for x in mg], "AC-GAN": [int(np.argmax(x["class_histogram"])) for x in m]}
rows = [[name, report.cell(x, "fid"), report.cell(x, "inception_score"), report.cell(x, "top_class_share"),
         report.digit_counts(top[name]), report.cell(x, "parzen_ll", 0)] for name, x in both.items()]
caption = f"GAN and AC-GAN under the first yardstick ({names[0]}): mean ± sd over {len(runs)} seeds."
report.glue_markdown("acgan_vs_gan", f"```{{table}} {caption}\n:name: tab-acgan-gan\n\n" + report.markdown_table(
    ["model", "FID (classifier features)", "Inception Score", "most frequent digit's share", "that digit",
     "Parzen log-likelihood (nats)"], rows) + "\n```")
report.glue_text("acgan_fid", report.cell(both["AC-GAN"], "fid"))
report.glue_text("gan_fid_vs", report.cell(both["GAN"], "fid"))
report.glue_text("acgan_is", report.cell(both["AC-GAN"], "inception_score"))
report.glue_text("gan_is_vs", report.cell(both["GAN"], "inception_score"))
gcfg = gan_runs[0].cfg
report.glue_text("acgan_confound", (
    f"The two differ in more than the labels: the AC-GAN trains with batches of {cfg.batch_size} and the GAN "
    f"with the {gcfg.batch_size} its sweep picked, so in the same {cfg.epochs} epochs the GAN makes "
    f"{updates(gcfg):,} generator updates and the AC-GAN {updates(cfg):,}.") if gcfg.batch_size != cfg.batch_size
    else f"Both train with batches of {cfg.batch_size}, {updates(cfg):,} generator updates in {cfg.epochs} epochs.")
fid_a, fid_g = [x["fid"] for x in m], [x["fid"] for x in mg]
v = report.verdict(fid_a, fid_g, lower_is_better=True)
differs = (gcfg.beta1, gcfg.batch_size) != (cfg.beta1, cfg.batch_size)
report.glue_text("acgan_cross", f"Against the sweep's pick (β1 = {gcfg.beta1}, batch {gcfg.batch_size}"
                 + (", so more than the labels differ" if differs else "") + "), the AC-GAN's test FID is "
                 + {"better": "lower", "worse": "higher", "indistinguishable": "not measurably different"}[v]
                 + f" ({report.cell(both['AC-GAN'], 'fid')} with labels against {report.cell(both['GAN'], 'fid')} without; "
                 f"{report.p_text(fid_a, fid_g)})"
                 + (f", although the GAN made {updates(gcfg) / updates(cfg):.1f} times as many generator updates."
                    if updates(gcfg) > updates(cfg) and v == "better" else "."))
for name, x in both.items():
    print(f"{name}: FID per seed", ", ".join(f"{r['fid']:.2f}" for r in x["per_seed"]))

# %% [markdown]
# ### Like for like
#
# The GAN above is the sweep's pick, which need not share the AC-GAN's $\beta_1$ and batch size.
# {numref}`tab-acgan-like` sets each AC-GAN beside the GAN of the sweep with the same $\beta_1$ and
# batch size, trained for as many epochs on the same images, compared at their last quality check
# (validation FID under the first yardstick, from the quality checks both chapters make during
# training; Welch's t-test over seeds). The AC-GAN at the other $\beta_1$ is a group of its own.
# {glue:text}`acgan_like` {glue:text}`acgan_beta1`
#
# ```{glue:md} acgan_like_table
# :format: myst
# ```

# %% tags=["hide-input"]
pairs = findings.label_pairs(profile, sweep, runs, device)
like_rows, like = findings.label_effect(pairs)
report.glue_text("acgan_like", like)
report.glue_text("acgan_answer", findings.label_answer(pairs))  # the answer rests on the like-for-like tests
report.glue_text("acgan_beta1", findings.label_beta1(pairs))
caption = (f"GAN and AC-GAN of the same β1 and batch size: validation FID at the last quality check ({cfg.epochs} "
           f"epochs), mean ± sd over {len(ev.seeds)} seeds, and Welch's t-test over seeds.")
_ = report.glue_markdown("acgan_like_table", f"```{{table}} {caption}\n:name: tab-acgan-like\n\n" + report.markdown_table(
    ["setting", "GAN", "AC-GAN", "the labels", "p"], like_rows) + "\n```")

# %% [markdown]
# **Did the labels help?** {glue:text}`acgan_answer` The Inception Score, {glue:text}`acgan_is`
# against {glue:text}`gan_is_vs`, rewards confident *and* balanced class predictions, which the
# AC-GAN gets by construction (every class is requested equally often), so the FID is the fairer
# of the two comparisons.
#
# ## What this chapter showed
#
# The AC-GAN built on the paper's networks draws the digit it is asked for: the two
# independent classifiers agree with the request for {glue:text}`acgan_acc` and {glue:text}`acgan_acc2` of its
# samples ({numref}`tab-acgan-acc`), and one noise vector keeps its style across the ten classes
# ({numref}`fig-acgan-grid`). Did the labels help? {glue:text}`acgan_answer`
# {glue:text}`acgan_like`
