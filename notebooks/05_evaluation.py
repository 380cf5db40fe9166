# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Evaluation
#
# The seed report judged its models by eye. This chapter measures the three models of the
# previous chapters the same way, with the metrics the field uses for MNIST, and puts the
# numbers beside published anchors ({numref}`tab-eval` is generated; no number in this chapter
# is typed by hand). The same numbers are written to `results/<profile>/metrics.json`, and the
# images each model is judged on to `results/<profile>/samples/<model>.npz`, so that any other
# tool can judge the same images.
#
# **The yardstick.** A LeNet-like convolutional classifier {cite:p}`lecun1998` (two 5 × 5
# convolution + max-pool blocks, a 128-unit dense layer, ten outputs), trained by this project on
# the 60,000 training images and cached like every other run. It is never the model being judged.
#
# **The metrics.**
# - *FID in classifier features* {cite:p}`heusel2017`: the Fréchet distance between Gaussians
#   fitted to the classifier's 128-d penultimate features of the generated images and of the
#   10,000 test images. The real-vs-real value (training images vs test images) is the floor.
# - *Inception Score* {cite:p}`salimans2016` with the same classifier:
#   $\exp \mathbb E_x \mathrm{KL}(p(y \mid x) \| p(y))$, between 1 and 10; high when every image
#   is classified confidently *and* the classes are balanced.
# - *Parzen-window log-likelihood*, the protocol of {cite:t}`goodfellow2014`: a Gaussian kernel
#   of width $\sigma$ on every generated image, $\sigma$ chosen on a validation split (here the
#   last 10,000 training images), the mean log-likelihood of the test images reported with its
#   standard error over images. It is known to be a poor estimate of likelihood in 784
#   dimensions {cite:p}`theis2016`: a model can score well by memorising and badly while
#   producing good samples, and the value depends on the number of samples. It is reported
#   because it is the paper's own measure, not because it ranks models reliably.
# - *VAE test NLL*: importance-sampled, from the VAE chapter.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
seeds = None  # training seeds per model (None: the profile value)
n_samples = None  # generated images per model (None: the profile value, 10000)
nll_k = None
nll_images = None
device = None

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import matplotlib.pyplot as plt
import numpy as np
import torch
from mnistgen import evaluate, plots, report
from mnistgen.config import make_config
from mnistgen.data import load_mnist, to_unit
from mnistgen.runs import DATA_ROOT, RESULTS_ROOT, atomic_write_json, get_run

ev = make_config("evaluation", profile, seeds=seeds, n_samples=n_samples, nll_k=nll_k,
                 nll_images=nll_images, device=device)
clf = evaluate.classifier_run(profile)
runs = {m: [get_run(make_config(m, profile, seed=s, device=device), profile) for s in ev.seeds]
        for m in ("gan", "acgan", "vae")}
display(Markdown(report.provenance("evaluation", profile, dict(seeds=seeds, n_samples=n_samples, nll_k=nll_k,
                                                                nll_images=nll_images, device=device),
                                   [clf] + [r for rs in runs.values() for r in rs])))

# %% tags=["hide-input"]
per_seed = {m: [evaluate.sample_metrics(r, ev, clf) for r in rs] for m, rs in runs.items()}
for row, r in zip(per_seed["vae"], runs["vae"]):
    row.update(evaluate.vae_nll(r, ev))
real = evaluate.real_metrics(ev, clf)
summary = evaluate.summarize(per_seed)
results = {"profile": profile, "seeds": list(ev.seeds),
           "classifier": {"test_accuracy": clf.history[-1]["test_acc"], "run": clf.path.name},
           "real": {k: real[k] for k in ("fid", "inception_score", "test_inception_score", "parzen_ll", "parzen_se")},
           **summary,
           "runs": {m: [r.path.name for r in rs] for m, rs in runs.items()}}
out = RESULTS_ROOT / profile
atomic_write_json(out / "metrics.json", results)
for m, rs in runs.items():
    evaluate.save_samples(rs[0], ev, out / "samples" / f"{m}.npz")
clf_acc = report.glue_number("clf_test_acc", 100 * results["classifier"]["test_accuracy"], 2)


# %% [markdown]
# ## Results
#
# The classifier that judges them reaches {glue:text}`clf_test_acc`% on the test set.
# Values are the mean over {glue:text}`eval_n_seeds` training seed(s)
# ({glue:text}`eval_seeds`), ± the standard deviation over seeds where there are several;
# every generated-image metric uses {glue:text}`eval_n_samples` samples per model.
#
# ```{glue:md} eval_table
# :format: myst
# ```

# %% tags=["hide-input"]
def fmt(d, key, digits=2):
    if key not in d:
        return ""
    s = f"{d[key]:.{digits}f}"
    return s + (f" ± {d[key + '_std']:.{digits}f}" if key + "_std" in d else "")


def parzen(d):
    return f"{d['parzen_ll']:.0f} ± {d['parzen_se']:.0f}" + (f" (seed std {d['parzen_ll_std']:.0f})" if "parzen_ll_std" in d else "")


header = ["model", "FID ↓", "Inception Score ↑", "Parzen log-lik. (nats) ↑", "test NLL (nats) ↓",
          "class accuracy ↑", "samples"]
rows = [
    ["real training images (floor / ceiling)", fmt(real, "fid"), fmt(real, "inception_score"), parzen(real), "", "",
     f"{real['n_samples']:,}"],
    ["GAN (this report)", fmt(summary["gan"], "fid"), fmt(summary["gan"], "inception_score"), parzen(summary["gan"]),
     "", "", f"{summary['gan']['n_samples']:,}"],
    ["AC-GAN (this report)", fmt(summary["acgan"], "fid"), fmt(summary["acgan"], "inception_score"),
     parzen(summary["acgan"]), "", fmt(summary["acgan"], "class_accuracy", 3), f"{summary['acgan']['n_samples']:,}"],
    ["VAE (this report)", fmt(summary["vae"], "fid"), fmt(summary["vae"], "inception_score"), parzen(summary["vae"]),
     fmt(summary["vae"], "test_nll") + f" (k = {summary['vae']['nll_k']:,}, {summary['vae']['nll_images']:,} images)",
     "", f"{summary['vae']['n_samples']:,}"],
    ["MNIST test set, as commonly reported with other MNIST classifiers", "", "9.88", "", "", "", "10,000"],
    ["GAN, {cite:t}`goodfellow2014`", "", "", "225 ± 2", "", "", "10,000"],
    ["VAE, {cite:t}`burda2015`", "", "", "", "86.76 (k = 5,000)", "", ""],
    ["IWAE k = 50, {cite:t}`burda2015`", "", "", "", "84.78 (k = 5,000)", "", ""],
]
table = "```{table} Every model measured the same way. FID and Inception Score use the project's classifier, not Inception; published rows are from the cited papers with their own models and settings.\n:name: tab-eval\n\n" + report.markdown_table(header, rows) + "\n```"
report.glue_markdown("eval_table", table)
report.glue_text("eval_n_seeds", str(len(ev.seeds)))
report.glue_text("eval_seeds", ", ".join(map(str, ev.seeds)))
report.glue_text("eval_n_samples", f"{ev.n_samples:,}")
print(f"classifier test accuracy {results['classifier']['test_accuracy']:.4f}")
for m in ("real", "gan", "acgan", "vae"):
    print(m, {k: round(v, 2) for k, v in results[m].items() if isinstance(v, float) and not k.endswith("_std")})

# %% [markdown]
# The real test set's Inception Score under our classifier is {glue:text}`real_test_is`; the
# value of about 9.88 quoted for MNIST comes from other classifiers, so only the closeness of
# the two, not the last digit, carries over.
# Among the generative models, the FID and Inception Score rank
# {glue:text}`eval_rank_fid` (best first, by FID).
#
# ## Mode dropping
#
# An unconditional generator can win the game by covering only part of the data. The
# classifier's predicted labels for each model's samples ({numref}`fig-eval-classes`) make that
# visible: the data's proportions are close to uniform (dashed line).
#
# ```{glue:figure} eval_classes
# :name: fig-eval-classes
#
# Share of each model's samples assigned to each digit by the classifier; dashed: 1/10.
# ```

# %% tags=["hide-input"]
ranked = sorted(("GAN", "AC-GAN", "VAE"), key=lambda n: summary[{"GAN": "gan", "AC-GAN": "acgan", "VAE": "vae"}[n]]["fid"])
report.glue_text("eval_rank_fid", ", ".join(ranked))
report.glue_number("real_test_is", real["test_inception_score"], 2)
fig, ax = plt.subplots(figsize=(8, 3.2))
width = 0.2
for i, (name, hist) in enumerate([("real (train)", real["class_histogram"])] +
                                 [(m, per_seed[m][0]["class_histogram"]) for m in ("gan", "acgan", "vae")]):
    h = np.asarray(hist, float)
    ax.bar(np.arange(10) + (i - 1.5) * width, h / h.sum(), width, label=name)
ax.axhline(0.1, color="gray", ls="--", lw=1)
ax.set_xticks(range(10))
ax.set_xlabel("digit predicted by the classifier")
ax.set_ylabel("share of samples")
ax.legend(frameon=False, ncol=4, fontsize=8)
fig.tight_layout()
report.glue_figure("eval_classes", fig, profile)

# %% [markdown]
# ## Does the GAN copy its training data?
#
# A generator that memorised training images would score well on most of these metrics.
# {numref}`fig-eval-nn` puts GAN samples beside their nearest training images, in pixel space
# and in the classifier's feature space.
#
# ```{glue:figure} eval_nn
# :name: fig-eval-nn
#
# Top row: GAN samples. Middle: the nearest of the 60,000 training images in pixel space
# (Euclidean). Bottom: the nearest in the classifier's feature space.
# ```

# %% tags=["hide-input"]
train = load_mnist(DATA_ROOT, train=True)
images, _ = evaluate.generate(runs["gan"][0], 10)
_, f_train = evaluate.classify(clf.models["net"], train.images)
_, f_q = evaluate.classify(clf.models["net"], images)
nn_pix = evaluate.nearest_neighbours(to_unit(images), to_unit(train.images))[:, 0]
nn_feat = evaluate.nearest_neighbours(f_q, f_train)[:, 0]
pix_dist = (to_unit(images) - to_unit(train.images[nn_pix])).norm(dim=1)
report.glue_figure("eval_nn", plots.image_rows([images, train.images[nn_pix], train.images[nn_feat]],
                                               ["GAN sample", "nearest (pixels)", "nearest (features)"]), profile)
report.glue_number("nn_pix_dist", float(pix_dist.mean()), 2)
print(f"mean pixel-space distance to the nearest training image: {pix_dist.mean():.2f}")

# %% [markdown]
# The mean Euclidean distance (pixels in [0, 1]) from a sample to its nearest training image is
# {glue:text}`nn_pix_dist`; a copied image would be at distance 0.
