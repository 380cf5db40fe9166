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
# # The variational autoencoder
#
# The paper's VAE section held only a citation. This chapter builds the model of
# {cite:t}`kingma2013`, trains it on MNIST and measures its test-set likelihood, which, unlike
# a GAN's, can be estimated and compared with the literature.
#
# **Model.** An encoder maps an image $x$ to a Gaussian posterior
# $q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$ through one
# hidden layer (784 → 400 → $(\mu, \log\sigma^2)$, ReLU); a decoder maps $z \in \mathbb R^d$
# through $d$ → 400 → 784 to the logits of independent Bernoulli pixels $p_\theta(x \mid z)$;
# the prior is $p(z) = \mathcal N(0, I)$.
#
# **Objective.** The evidence lower bound, in nats per image (summed over the 784 pixels,
# averaged over images),
#
# $$
# \log p_\theta(x) \ge \mathcal L(x) = \mathbb E_{q_\phi(z \mid x)}[\log p_\theta(x \mid z)]
#   - \mathrm{KL}(q_\phi(z \mid x) \,\|\, p(z)),
# $$ (eq-elbo)
#
# with the KL term in closed form,
# $\mathrm{KL} = \tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2)$, and the
# expectation estimated with one sample through the reparameterisation
# $z = \mu + \sigma \odot \epsilon$, $\epsilon \sim \mathcal N(0, I)$, which makes the sample
# differentiable in $\phi$.
#
# **Data.** A Bernoulli likelihood is a likelihood only of *binary* images. We train and
# evaluate on *dynamically binarised* MNIST: every time an image is drawn, each pixel is sampled
# as Bernoulli(intensity). This is the setting of the published numbers we compare with
# {cite:p}`burda2015`; the test set is binarised once, with a fixed seed, so that every number
# below refers to the same 10,000 binary images. (The cross-entropy of grey-level pixels, often
# reported as a VAE "loss", is not a log-likelihood and is not reported here.)

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
epochs = None  # None: the profile value
batch_size = None
lr = None
z_dim = None  # latent dimension of the main model (None: the profile value, 20)
seeds = None  # None: the profile's seeds (trained as one batch)
device = None
nll_k = None  # importance samples per test image (None: the profile value, 5000)
nll_images = None  # test images in the likelihood estimate (None: the profile value)
iwae_epochs = None  # epochs of the Burda et al. comparison's models (None: the profile value)

# %% tags=["remove-cell"]
# The parameters papermill was given, checked before any work: a misspelt name (papermill only
# warns of one), a type or a range stops here; a list passed with -p as a string is read as YAML.
from mnistgen import chapters

globals().update(chapters.checked("vae", globals()))

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import matplotlib.pyplot as plt
import numpy as np
import torch
from mnistgen import evaluate, parts, plots, report
from mnistgen.config import make_config
from mnistgen.data import load_mnist, to_unit
from mnistgen.runs import DATA_ROOT
from mnistgen.schedules import BURDA_EPOCHS
from mnistgen.steps import train_size, updates
from mnistgen.train import fixed_noise

params = dict(epochs=epochs, batch_size=batch_size, lr=lr, z_dim=z_dim, device=device)
ev = make_config("evaluation", profile, seeds=seeds, nll_k=nll_k, nll_images=nll_images, device=device)
# d = 2 first: the evaluation chapter, rendered beside this one, needs only the main model and
# trains it meanwhile if it gets there first (the run's lock makes the other process wait).
runs2 = evaluate.model_runs("vae", profile, ev, **{**params, "z_dim": 2})
runs = evaluate.model_runs("vae", profile, ev, **params)
run, run2, cfg = runs[0], runs2[0], runs[0].cfg
vae, vae2 = run.models["vae"], run2.models["vae"]
test = load_mnist(DATA_ROOT, train=False)
report.glue_text("vae_n_seeds", str(len(ev.seeds)))
display(Markdown(report.provenance("vae", profile, {**params, "seeds": seeds, "nll_k": nll_k,
                                                    "nll_images": nll_images}, runs + runs2)))

# %% [markdown]
# ## Training
#
# Every model of this chapter is trained with {glue:text}`vae_n_seeds` seeds together; numbers
# are mean ± standard deviation over them, and pictures show seed 0.
# {numref}`fig-vae-curves` follows the bound and its two terms on the training batches (each a
# fresh binarisation) and on the fixed binarised test set, for the $d$ =
# {glue:text}`vae_d`-dimensional model. The reconstruction term rises as the decoder learns;
# the KL term, the price in nats of encoding each image, rises with it as the encoder starts
# to use the latent space.
#
# ```{glue:figure} vae_curves
# :name: fig-vae-curves
#
# ELBO (top), reconstruction log-likelihood $\mathbb E_q \log p(x \mid z)$ (middle) and
# $\mathrm{KL}(q \| p)$ (bottom) per epoch, nats per image; train: mean over the epoch's batches,
# test: after the epoch. Every seed (thin) and their mean (thick).
# ```

# %% tags=["hide-input"]
histories = [[{**row, "elbo": -row["loss"]} for row in r.history] for r in runs]
report.glue_text("vae_d", str(cfg.z_dim))
fig = plots.curves(histories, [[("elbo", "train"), ("test_elbo", "test")], [("rec", "train"), ("test_rec", "test")],
                       [("kl", "train"), ("test_kl", "test")]],
                   ["ELBO (nats)", "reconstruction (nats)", "KL (nats)"])
report.glue_figure("vae_curves", fig, profile)

# %% [markdown]
# ## Test-set likelihood
#
# The ELBO bounds $\log p(x)$ from below. A tighter estimate importance-samples the posterior
# {cite:p}`burda2015`:
# $\log p(x) \approx \log \frac1k \sum_{i=1}^k p(x, z_i) / q(z_i \mid x)$,
# $z_i \sim q(z \mid x)$, which is a lower bound for every $k$, is exact as $k \to \infty$,
# and is computed here with a running log-sum-exp over batches of samples.
# The table below puts our estimate beside the published ones for the same setting. Our NLL is
# $-\frac1N \sum_n \log \hat p(x_n)$ with $k$ = {glue:text}`vae_nll_k` importance samples for
# each of {glue:text}`vae_nll_images` binarised test images ({glue:text}`vae_nll_subset`), mean ± sd
# over seeds (the standard error over images of one seed is {glue:text}`vae_nll_se` nats).
# The published values are from {cite:t}`burda2015`, Table 1: dynamically binarised MNIST, a
# 784-200-200-50 architecture with two deterministic layers per side, trained for 3,280 epochs.

# %% tags=["hide-input"]
nlls = [evaluate.vae_nll(r, ev) for r in runs]
nll = {**evaluate.mean_sd("test_nll", [x["test_nll"] for x in nlls]),
       **evaluate.mean_sd("neg_elbo", [-x["test_elbo"] for x in nlls])}
report.glue_mean_sd("vae_nll", [x["test_nll"] for x in nlls], 2)
report.glue_mean_sd("vae_elbo", [x["test_elbo"] for x in nlls], 2)
report.glue_mean_sd("vae_nll_se", [x["test_nll_se"] for x in nlls], 2)
se_mean, sd_seeds = float(np.mean([x["test_nll_se"] for x in nlls])), nll["test_nll_sd"]
report.glue_text("vae_sd_se", "One seed only: no spread over seeds to set beside the standard error over test images, "
                 f"{se_mean:.2f} nats." if sd_seeds is None else
                 f"The sd over seeds, {sd_seeds:.2f} nats, is {'smaller' if sd_seeds < se_mean else 'larger'} than the "
                 f"standard error over test images, {se_mean:.2f} nats.")
report.glue_text("vae_nll_k", f"{nlls[0]['nll_k']:,}")
report.glue_text("vae_nll_images", f"{nlls[0]['nll_images']:,}")
report.glue_text("vae_nll_subset", "all of them" if nlls[0]["nll_images"] >= 10_000 else
                 "a seeded random subset, the same for every model: MNIST's test set is not shuffled, and "
                 "its first digits are cleaner than the rest")
burda, nbip = report.published("burda2015"), report.published("nbip_iwae")
se = report.mean_sd_text(float(np.mean([x["test_nll_se"] for x in nlls])), None, 2)
rows = [
    [f"this report, VAE d = {cfg.z_dim}, {cfg.epochs} epochs ({profile}), {len(runs)} seeds",
     report.cell(nll, "test_nll"), se, report.cell(nll, "neg_elbo"), f"{nlls[0]['nll_k']:,}", f"{nlls[0]['nll_images']:,}"],
    ["Burda et al. (2016), VAE, 1 stochastic layer, k = 1 training",
     f"{report.published_value(burda, 'test_nll', objective='vae', k=1):.2f}", "", "", "5,000", "10,000"],
    ["Burda et al. (2016), IWAE, 1 stochastic layer, k = 50 training",
     f"{report.published_value(burda, 'test_nll', objective='iwae', k=50):.2f}", "", "", "5,000", "10,000"],
]
_ = report.glue_markdown("vae_nll_table", report.table_block(
    "tab-vae-nll", "The VAE's test NLL beside the published one-stochastic-layer models of Burda et al. (2016): "
    "mean ± sd over seeds; the standard error over test images of one seed; k importance samples per image.",
    ["model", "test NLL (nats), mean ± sd over seeds", "se over test images (one seed)", "−ELBO (nats)", "k",
     "test images"], rows))

# %% [markdown]
# ```{glue:md} vae_nll_table
# :format: myst
# ```
#
# Our model reaches a test NLL of {glue:text}`vae_nll` nats ({numref}`tab-vae-nll`) with a test ELBO of
# {glue:text}`vae_elbo` nats on the same images; the gap between the two is what the
# single-sample bound leaves on the table. {glue:text}`vae_sd_se` The seeds were scored on the
# same images, so their spread says how much the model varies, and the standard error how far the
# number could move on another sample of test digits. The published models are deeper and were trained far longer.
# The next section trains the published model here, on this report's schedule, so that the two
# architectures can be compared at equal training; what the published protocol's 3,280 epochs
# add is left to the `burda` profile (a GPU's work).
#
# ## Against a published table: the IWAE paper's Table 1
#
# **Model.** The one-stochastic-layer model of {cite:t}`burda2015`: encoder 784-200-200-(50, 50)
# (mean and log-variance of $q(z \mid x)$), decoder 50-200-200-784 (Bernoulli logits), tanh.
#
# **Objectives.** With $k$ samples $z_i \sim q(z \mid x)$ and importance weights
# $w_i = p(x, z_i) / q(z_i \mid x)$, the IWAE bound
#
# $$
# \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k w_i\Big] \le \log p(x)
# $$ (eq-iwae)
#
# tightens as $k$ grows, while the *average* of $k$ single-sample ELBOs,
# $\mathbb E[\frac1k \sum_i \log w_i]$, is the ELBO for every $k$ (only its variance falls).
# Training on each is the "IWAE" and "VAE" column of their Table 1; for $k = 1$ the two are the
# same model. Both bounds are unit-tested on a linear-Gaussian model whose likelihood is known
# (with the exact posterior as $q$ every bound equals $\log p(x)$; with a worse $q$ the IWAE bound
# rises with $k$ towards it).
#
# **Protocol.** Adam ($\beta$ = 0.9, 0.999, $\epsilon = 10^{-4}$), dynamic binarisation, learning
# rate $10^{-3} \cdot 10^{-i/7}$ for $3^i$ epochs, $i = 0 \dots 7$ (3,280 epochs, batch 20) in the
# paper. As their released code does, the decoder's output bias starts at the logit of the
# training images' mean intensities (clamped to $[10^{-3}, 1 - 10^{-3}]$). This page's models ran
# {glue:text}`iwae_epochs` epochs of {glue:text}`iwae_n_train` training images in batches of
# {glue:text}`iwae_batch`, the epochs allotted to the eight learning-rate stages in proportion to
# $3^i$ (at least one epoch each where there are eight or more): {glue:text}`iwae_updates` updates,
# {glue:text}`iwae_update_ratio` fewer than their {glue:text}`iwae_burda_updates`.
# {glue:text}`iwae_n_seeds` seeds per row, trained as one batch. The test NLL is the estimator of
# the table above ($k$ = {glue:text}`iwae_nll_k` importance samples) on {glue:text}`iwae_nll_images`
# test images ({glue:text}`iwae_nll_subset`); a latent unit is *active* when the variance of its
# posterior mean over all 10,000 test images exceeds $10^{-2}$, their definition.
#
# ```{glue:md} iwae_table
# :format: myst
# ```
#
# {numref}`fig-iwae-k` draws the same rows against $k$. The published columns are read from
# `book/published.yml` ({cite:t}`burda2015`, Table 1; the reproduction's README), never
# computed here; an empty cell is a row the source does not report. On a short schedule (the
# quick profile) the rows are far from the published ones and say only that the pipeline runs;
# `profiles/paper.yml` compresses the schedule to {glue:text}`iwae_paper_epochs` epochs and
# `profiles/burda.yml` runs theirs in full, {glue:text}`iwae_burda_epochs` epochs (a GPU's work:
# `mnistgen train all --profile burda`). {glue:text}`iwae_gap`
#
# **Are the rows still improving?** {numref}`fig-iwae-curves` follows each row's test ELBO through
# training against updates, beside this chapter's VAE. {glue:text}`iwae_trends`
# {glue:text}`iwae_vs_vae`
#
# ```{glue:figure} iwae_curves
# :name: fig-iwae-curves
#
# Test ELBO (nats, higher is better) during training of every row of {numref}`tab-iwae` and of
# this chapter's VAE, against updates: every seed (thin) and the mean (thick).
# ```
#
# **What the full protocol costs.** {glue:text}`iwae_bill`
#
# ```{glue:figure} iwae_k
# :name: fig-iwae-k
#
# Test NLL (nats, lower is better) against the number $k$ of samples in the training bound:
# this report's IWAE and averaged-ELBO models (mean ± sd over seeds; dots: seeds) and the
# published IWAE values (open markers).
# ```

# %% tags=["hide-input"]
iwae_rows = evaluate.iwae_table(profile, ev, epochs=iwae_epochs, device=device)
icfg = make_config("iwae", profile, epochs=iwae_epochs)
report.glue_text("iwae_epochs", f"{icfg.epochs:,}")
report.glue_text("iwae_n_train", f"{train_size(icfg):,}")
report.glue_text("iwae_batch", str(icfg.batch_size))
report.glue_text("iwae_n_seeds", str(len(iwae_rows[0]["seeds"])))
report.glue_text("iwae_nll_k", f"{iwae_rows[0]['nll_k']:,}")
report.glue_text("iwae_nll_images", f"{iwae_rows[0]['nll_images']:,}")
report.glue_text("iwae_paper_epochs", f"{make_config('iwae', 'paper').epochs:,}")
theirs = updates(make_config("iwae", "burda", n_train=None))
report.glue_text("iwae_updates", f"{updates(icfg):,}")
report.glue_text("iwae_burda_updates", f"{theirs:,}")
report.glue_text("iwae_update_ratio", f"{theirs / updates(icfg):,.0f} times")
report.glue_text("iwae_nll_subset", "all of them" if iwae_rows[0]["nll_images"] >= 10_000 else
                 "a seeded random subset, the same for every row")
report.glue_text("iwae_burda_epochs", f"{make_config('iwae', 'burda').epochs:,}")


def published_nll(table, row):
    v = report.published_value(table, "test_nll", objective=row["objective"], k=row["k"])
    return "" if v is None else f"{v:.2f}"


names = {"iwae": "IWAE", "vae": "VAE (mean of k ELBOs)"}
iwae_caption = (f"Burda et al.'s model trained here on each bound (mean ± sd over {len(iwae_rows[0]['seeds'])} seeds) "
                "beside their Table 1 and the nbip/IWAE reproduction: test NLL in nats (lower is better) and active "
                "latent units.")
report.glue_markdown("iwae_table", f"```{{table}} {iwae_caption}\n:name: tab-iwae\n\n" + report.markdown_table(
    ["training bound", "k", "test NLL, this report", f"active units (of {icfg.z_dim})", "epochs", "batch",
     "Burda et al. (2016)", "nbip/IWAE reproduction"],
    [[names[r["objective"]] + (" = VAE" if r["k"] == 1 else ""), r["k"], report.cell(r, "test_nll"),
      report.cell(r, "active_units", 1), f"{r['epochs']:,}", r["batch_size"], published_nll(burda, r), published_nll(nbip, r)]
     for r in iwae_rows]) + "\n```")
report.glue_figure("iwae_k", plots.nll_vs_k(iwae_rows, {"Burda et al. (2016)": burda, "nbip/IWAE": nbip}), profile)

# how far each row is from the published ones (this page's mean minus theirs)
gaps = []
for r in iwae_rows:
    theirs_ = [(src, report.published_value(t, "test_nll", objective=r["objective"], k=r["k"]))
               for src, t in (("Burda et al.", burda), ("nbip", nbip))]
    theirs_ = [f"{r['test_nll'] - v:+.2f} from {src}" for src, v in theirs_ if v is not None]
    if theirs_ and r.get("test_nll") is not None:
        gaps.append(f"{names[r['objective']].split(' ')[0]} k = {r['k']}: " + ", ".join(theirs_))
report.glue_text("iwae_gap", ("Distance to the published rows, this page's mean minus theirs (nats): "
                              + "; ".join(gaps) + ".") if gaps else "")
# the rows' training curves and trends (findings.py), and the report's VAE against the k = 1 row
from mnistgen import findings  # noqa: E402

row_name = lambda r: f"{names[r['objective']].split(' ')[0]} k = {r['k']}"
iwae_hist = {row_name(r): findings.run_histories(profile, r["runs"]) for r in iwae_rows}
per_epoch = {row_name(r): updates(icfg) // icfg.epochs for r in iwae_rows}
vae_label = f"this chapter's VAE (d = {cfg.z_dim})"
curves = {**iwae_hist, vae_label: [r.history for r in runs]}
# the y range from a tenth of the way in: the first epochs' steep rise would flatten the end, the question here
tail = [h["test_elbo"] for hs in curves.values() for hist in hs for h in hist[len(hist) // 10:]]
report.glue_figure("iwae_curves", plots.group_curves(curves, "test_elbo", "test ELBO (nats)",
                                                      {**per_epoch, vae_label: updates(cfg) // cfg.epochs},
                                                      ylim=(min(tail) - 1, max(tail) + 1)), profile)
trends, trend_by = [], {}
for name_, hs in iwae_hist.items():
    try:
        t = trend_by[name_] = findings.trend(hs, "test_elbo", per=10)
        trends.append(f"{name_}: {t.direction} ({report.values_text(t.slopes, 2)} nats per 10 epochs, {t.test_text})")
    except ValueError:
        trends.append(f"{name_}: too few epochs for a trend")
report.glue_text("iwae_trends", "Over the last third of their epochs, with the learning rate at its last stages, the test "
                 "ELBO's fitted slope per seed (rising is improving; one-sample t-test over seeds at the 5 % level) is "
                 + "; ".join(trends) + ".")
k1 = next((r for r in iwae_rows if r["objective"] == "iwae" and r["k"] == 1), None)
report.glue_text("iwae_vs_vae", "" if k1 is None else findings.vae_against_burda(
    [r.history for r in runs], cfg, iwae_hist[row_name(k1)], make_config("iwae", profile, epochs=iwae_epochs, k=1)))
cost = parts.measured("iwae-cost")
if cost is None:
    report.glue_text("iwae_bill", "Not measured yet (`python -m benchmarks.iwae_cost`).")
else:
    k50 = cost["rows"]["iwae objective=iwae k=50"]
    gpu = cost.get("burda_gpu_h")
    slowest = max(cost["burda_cpu_h"]["rows"], key=cost["burda_cpu_h"]["rows"].get)  # "iwae objective=vae k=50"
    slow_obj, slow_k = (part.split("=")[1] for part in slowest.split()[1:])
    report.glue_text("iwae_bill", (
        f"Measured on a {cost['cpu']['torch_threads']}-thread CPU ({cost['cpu']['processor']}, {cost['date']}, "
        f"benchmarks/iwae_cost.py): a step of the IWAE k = 50 row takes "
        f"{k50['paper_3_seeds']['ms_per_step']:.0f} ms at batch 100 with 3 seeds "
        f"({k50['paper_5_seeds']['ms_per_step']:.0f} ms with 5) and {k50['burda_3_seeds']['ms_per_step']:.0f} ms "
        f"at Burda et al.'s batch 20 with 3 seeds. The five rows together fit {cost['budget_h']:g} h of that "
        f"machine at {cost['paper_epochs_3_seeds']:,} epochs with 3 seeds ({cost['paper_epochs_5_seeds']:,} epochs with 5), "
        f"the bound the paper profile's schedule is chosen within. Burda et al.'s full protocol "
        f"({BURDA_EPOCHS:,} epochs at batch 20, 3 seeds per row) would take {cost['burda_cpu_h']['one_machine']:,.0f} h "
        f"there, {cost['burda_cpu_h']['dask_five_machines']:,.0f} h on a Dask cluster of five such machines (a row "
        f"each; the slowest row, {names[slow_obj]} with k = {slow_k}, sets the wall time)"
        + (f", and at most {gpu['one_gpu_upper_bound']:,.0f} h on one NVIDIA H100 (its measured steps at batch "
           "100, taken for batch 20's, whose steps are launch-bound)" if gpu else "") + "."))

# %% [markdown]
# ## Reconstructions, samples and interpolations
#
# In the reconstructions ({numref}`fig-vae-recon`), {glue:text}`vae_recon_acc` The samples from the prior ({numref}`fig-vae-samples`) are blurrier
# than the reconstructions: a decoder's Bernoulli means average over the pixels it is unsure of,
# and a $z$ from the prior lies where the posteriors of few training digits put their mass; the
# evaluation chapter measures them beside the GAN's. The interpolations
# ({numref}`fig-vae-interp`) pass between the two endpoints' digits through images that are
# themselves digit-like, along both paths.
#
# ```{glue:figure} vae_recon
# :name: fig-vae-recon
#
# Test digits (rows 1 and 3: the grey-level originals; the model sees a binarisation of them)
# and their reconstructions by seed 0 (rows 2 and 4: Bernoulli means of $p(x \mid z = \mu(x))$).
# ```
#
# ```{glue:figure} vae_samples
# :name: fig-vae-samples
# :figwidth: 480px
#
# 100 samples of seed 0 from the prior: Bernoulli means of $p(x \mid z)$, $z \sim \mathcal N(0, I)$
# from the same fixed noise seed as the GAN's {numref}`fig-gan-samples`.
# ```
#
# ```{glue:figure} vae_interp
# :name: fig-vae-interp
#
# Interpolations between the posterior means of pairs of test digits, linear (top of each pair)
# and spherical (bottom), seed 0, in the same layout as the GAN's {numref}`fig-gan-interp`.
# ```

# %% tags=["hide-input"]
# the yardstick first: if this chapter renders alone it trains it, and training needs gradients
judge = evaluate.classifier_run(profile, ev.yardsticks[0], device=device)
with torch.no_grad():
    x = to_unit(test.images[:20]).to(run.device)
    mu, _ = vae.encode(x)
    recon = torch.sigmoid(vae.decode(mu))
    report.glue_figure("vae_recon", plots.image_rows([x[:10], recon[:10], x[10:], recon[10:]],
                                                     ["original", "reconstruction"] * 2), profile)
    prior = torch.sigmoid(vae.decode(fixed_noise(100, cfg.z_dim, run.device)))
    report.glue_figure("vae_samples", plots.sample_grid(prior, nrow=10), profile)
    t = torch.linspace(0, 1, 10, device=run.device)
    pairs = [(3, 2), (1, 7), (4, 9), (0, 8)]  # test indices: 0/1, 7/2, 4/9, 6/5 style pairs
    rows, labels = [], []
    for i, j in pairs:
        a, b = vae.encode(to_unit(test.images[[i, j]]).to(run.device))[0]
        rows += [torch.sigmoid(vae.decode(plots.lerp(a, b, t))), torch.sigmoid(vae.decode(plots.slerp(a, b, t)))]
        labels += [f"{int(test.labels[i])} → {int(test.labels[j])}, lerp", f"{int(test.labels[i])} → {int(test.labels[j])}, slerp"]
    report.glue_figure("vae_interp", plots.image_rows(rows, labels), profile)
    # Do the reconstructions keep the digit? The first yardstick reads 1,000 random test digits and
    # their reconstructions (seed 0).
    pick = torch.randperm(len(test.images), generator=torch.Generator().manual_seed(0))[:1000]
    xs = to_unit(test.images[pick]).to(run.device)
    rec = (torch.sigmoid(vae.decode(vae.encode(xs)[0])) * 255).round().to(torch.uint8).cpu()
    read = {name: evaluate.classify(judge.models["net"], imgs)[0].argmax(1).cpu() for name, imgs in
            (("original", test.images[pick]), ("reconstruction", rec))}
    agree = {name: float((p == test.labels[pick]).float().mean()) for name, p in read.items()}
_ = report.glue_text("vae_recon_acc", f"the first yardstick labels {100 * agree['reconstruction']:.1f}% of 1,000 random "
                 f"test digits' reconstructions correctly (seed 0), against {100 * agree['original']:.1f}% of the digits "
                 "themselves: " + ("the reconstructions keep the digit." if agree["reconstruction"] >= agree["original"] - 0.05
                                   else "the reconstructions lose part of it."))

# %% [markdown]
# ## A two-dimensional latent space
#
# With $d = 2$ the latent space can be drawn. {numref}`fig-vae-latent` shows the posterior
# means of the 10,000 test images coloured by their label, and the images the decoder produces
# on a grid of latent values placed at the quantiles of the prior, so that each cell covers the
# same prior mass. The $d = 2$ model trades likelihood for this picture: its test ELBO is
# {glue:text}`vae2_elbo` nats against {glue:text}`vae_elbo_last` for $d$ = {glue:text}`vae_d`
# (both on all 10,000 binarised test images after the last epoch, as in {numref}`fig-vae-curves`).
#
# ```{glue:figure} vae_latent
# :name: fig-vae-latent
#
# Top: posterior means $\mu(x)$ of the test set under the $d = 2$ model (seed 0), coloured by
# digit. Bottom: its decoder means on a 15 × 15 grid of $z$ at the prior's quantiles 0.03 … 0.97.
# ```

# %% tags=["hide-input"]
from scipy.stats import norm

with torch.no_grad():
    mu2 = torch.cat([vae2.encode(to_unit(c).to(run2.device))[0] for c in test.images.split(2000)]).cpu().numpy()
    q = torch.tensor(norm.ppf(np.linspace(0.03, 0.97, 15)), dtype=torch.float32)
    gy, gx = torch.meshgrid(q.flip(0), q, indexing="ij")
    grid = torch.sigmoid(vae2.decode(torch.stack([gx.ravel(), gy.ravel()], 1).to(run2.device)))
fig, (a1, a2) = plt.subplots(2, 1, figsize=(plots.COLUMN_IN - 1.0, 10.5))
sc = a1.scatter(mu2[:, 0], mu2[:, 1], c=test.labels.numpy(), cmap="tab10", s=2, alpha=0.6)
a1.legend(*sc.legend_elements(), title="digit", frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
a1.set_xlabel("$z_1$")
a1.set_ylabel("$z_2$")
a2.imshow(plots.grid_array(grid, 15, padding=0), cmap="gray", vmin=0, vmax=1)
a2.set_axis_off()
fig.tight_layout()
report.glue_figure("vae_latent", fig, profile)
report.glue_mean_sd("vae2_elbo", [r.history[-1]["test_elbo"] for r in runs2], 2)
report.glue_mean_sd("vae_elbo_last", [r.history[-1]["test_elbo"] for r in runs], 2)
for r, r2, x in zip(runs, runs2, nlls):
    print(f"seed {r.cfg.seed}: d = {cfg.z_dim}: test NLL {x['test_nll']:.2f} (k = {x['nll_k']}, {x['nll_images']} images), "
          f"test ELBO {x['test_elbo']:.2f}; d = 2: test ELBO {r2.history[-1]['test_elbo']:.2f}")

# %% [markdown]
# **Try it.** Below, the $d = 2$ decoder (seed 0) runs in this page: point anywhere on the plane
# (the prior's $\pm 3$ standard deviations, dots the posterior means of 2,000 random test
# images, coloured as above) and it decodes that $z$. Without JavaScript, and on paper, the grid
# of {numref}`fig-vae-latent` stands in for it.

# %% tags=["hide-input"]
from mnistgen import widgets

shown = np.random.default_rng(0).choice(len(mu2), size=min(2000, len(mu2)), replace=False)
widgets.latent_pointer(vae2, run2, profile, mu2[shown], test.labels.numpy()[shown])

# %% [markdown]
# ## What this chapter showed
#
# {glue:text}`vae_summary`

# %% tags=["hide-input"]
msd = lambda v: report.mean_sd_text(float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else None, 2)
iwae_only = sorted((r for r in iwae_rows if r["objective"] == "iwae"), key=lambda r: r["k"])
trend = ""
if len(iwae_only) > 1:
    seeds_k = [[p["test_nll"] for p in r["per_seed"]] for r in iwae_only]
    steps = [report.verdict(b, a, lower_is_better=True) for a, b in zip(seeds_k, seeds_k[1:])]
    falls = all(v == "better" for v in steps)  # every larger k measurably lower (Welch over seeds)
    trend = (" Trained with the IWAE bound, Burda et al.'s model reached a test NLL that "
             + ("falls measurably at every step" if falls else "does not fall measurably at every step") + " as k grows ("
             + ", ".join(f"k = {r['k']}: {report.cell(r, 'test_nll')}" for r in iwae_only) + " nats; "
             + "; ".join(f"k = {a_r['k']} against {b_r['k']}: " + report.p_text(b, a)
                         for (a, b), (a_r, b_r) in zip(zip(seeds_k, seeds_k[1:]), zip(iwae_only, iwae_only[1:]))) + "), "
             + ("the direction of their Table 1." if falls else "unlike their Table 1's steady fall."))
up = [n for n, t in trend_by.items() if t.direction == "rising"]
if up:
    how_many = f"All {len(up)}" if len(up) == len(iwae_hist) else f"{len(up)} of the {len(iwae_hist)}"
    trend += (f" {how_many} rows of that table {'was' if len(up) == 1 else 'were'} still improving when training "
              f"stopped at {icfg.epochs} epochs (the test ELBO's fitted slope over the last third of the epochs, "
              f"one-sample t-test over {len(next(iter(trend_by.values())).slopes)} seeds: p ≤ "
              f"{max(trend_by[n].p for n in up):.2g}): their NLLs are those of a schedule cut short.")
elbo2, elbo20 = [r.history[-1]["test_elbo"] for r in runs2], [r.history[-1]["test_elbo"] for r in runs]
_ = report.glue_text("vae_summary", f"The VAE the paper left empty trains on MNIST to a test NLL of "
                     f"{report.cell(nll, 'test_nll')} nats (k = {nlls[0]['nll_k']:,}; standard error over test "
                     f"images {report.mean_sd_text(float(np.mean([x['test_nll_se'] for x in nlls])), None, 2)}), a "
                     f"likelihood no GAN of this report has; its ELBO on the same images is "
                     f"{msd([x['test_elbo'] for x in nlls])} nats." + trend
                     + f" With a 2-d latent space its test ELBO is {msd(elbo2)} nats against {msd(elbo20)} for "
                     f"d = {cfg.z_dim} (all test images; {report.p_text(elbo2, elbo20)}): "
                     + {"worse": "the price of a latent space one can draw.",
                        "better": f"here the 2-d model is ahead of the {cfg.z_dim}-d one.",
                        "indistinguishable": "no measurable price for a latent space one can draw."}[
                         report.verdict(elbo2, elbo20, lower_is_better=False)])
