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
# L_S = \mathbb E[\log P(S{=}\text{real} \mid x_{real})] + \mathbb E[\log P(S{=}\text{fake} \mid G(z, c))],\quad
# L_C = \mathbb E[\log P(C{=}c \mid x_{real})] + \mathbb E[\log P(C{=}c \mid G(z, c))],
# $$ (eq-acgan)
#
# D maximises $L_S + L_C$; G maximises $L_C$ and, as in the rest of this report, the
# non-saturating form of its source term, $\mathbb E \log P(S{=}\text{real} \mid G(z, c))$.
# Optimiser, learning rate, $k$, batch size and epochs are the GAN's, so the two compare.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
epochs = None  # None: the profile value
batch_size = None
lr = None
seed = None
device = None

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import torch
from mnistgen import evaluate, plots, report
from mnistgen.config import make_config
from mnistgen.runs import get_run
from mnistgen.train import fixed_noise

params = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)
cfg = make_config("acgan", profile, **params)
run = get_run(cfg, profile)
G = run.models["G"]
gan_run = get_run(make_config("gan", profile, **params), profile)  # the unconditional baseline
clf = evaluate.classifier_run(profile)
ev = make_config("evaluation", profile, device=device)
display(Markdown(report.provenance("acgan", profile, params, [run, gan_run, clf])))

# %% [markdown]
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
# $G(z_j, c)$ for classes $c = 0, \dots, 9$ (rows) and ten fixed noise vectors $z_j$ (columns).
# ```

# %% tags=["hide-input"]
z = fixed_noise(10, cfg.z_dim, run.device)
with torch.no_grad():
    rows = [G(z, torch.full((10,), c, device=run.device)) for c in range(10)]
report.glue_figure("acgan_grid", plots.image_rows(rows, [str(c) for c in range(10)], size=5.2), profile)

# %% [markdown]
# ## Class interpolation
#
# Holding $z$ fixed and moving the class embedding linearly from one digit's to another's
# morphs one digit into the other in the same style ({numref}`fig-acgan-morph`).
#
# ```{glue:figure} acgan_morph
# :name: fig-acgan-morph
#
# Fixed $z$ per row; the embedding moves from $e_a$ to $e_b$ in 10 steps.
# ```

# %% tags=["hide-input"]
t = torch.linspace(0, 1, 10, device=run.device)
pairs = [(0, 6), (1, 7), (3, 8), (4, 9), (5, 2)]
rows = []
with torch.no_grad():
    for i, (a, b) in enumerate(pairs):
        ea, eb = G.embed.weight[a], G.embed.weight[b]
        rows.append(G.forward_embedded(z[i].expand(10, -1), plots.lerp(ea, eb, t)))
report.glue_figure("acgan_morph", plots.image_rows(rows, [f"{a} → {b}" for a, b in pairs]), profile)

# %% [markdown]
# ## Training
#
# Besides the GAN's curves, {numref}`fig-acgan-curves` follows the accuracy of D's class head on
# real and on generated batches. Generated images are easy to classify correctly from the start
# (G is rewarded for making them so), while accuracy on real digits measures how well D's
# auxiliary head learns MNIST itself.
#
# ```{glue:figure} acgan_curves
# :name: fig-acgan-curves
#
# Left: losses. Middle: mean $D(x)$ and $D(G(z, c))$ with the equilibrium 1/2. Right: accuracy of
# D's class head on real and generated batches.
# ```

# %% tags=["hide-input"]
fig = plots.curves(run.history, [[("d_loss", "D loss"), ("g_loss", "G loss")],
                                 [("d_real", "D(x), real"), ("d_fake", "D(G(z, c)), generated")],
                                 [("acc_real", "real"), ("acc_fake", "generated")]],
                   ["loss (nats)", "mean discriminator output", "class-head accuracy"],
                   hlines={1: (0.5, "equilibrium, 1/2")})
report.glue_figure("acgan_curves", fig, profile)

# %% [markdown]
# ## Do the samples show the requested digit?
#
# D's own class head is not a fair judge of G: the two were trained together. The independent
# classifier of the evaluation chapter (test accuracy {glue:text}`clf_acc`) labels
# {glue:text}`acgan_n` samples, an equal number per requested class; the table gives the
# fraction it labels as requested. Overall: {glue:text}`acgan_acc`.

# %% tags=["hide-input"]
m = evaluate.sample_metrics(run, ev, clf)
mg = evaluate.sample_metrics(gan_run, ev, clf)
report.glue_number("clf_acc", clf.history[-1]["test_acc"], 4)
report.glue_text("acgan_n", f"{m['n_samples']:,}")
report.glue_number("acgan_acc", m["class_accuracy"], 3)
table = report.markdown_table(["requested digit"] + [str(c) for c in range(10)] + ["all"],
                              [["classifier agrees"] + [f"{a:.3f}" for a in m["class_accuracy_per_class"]]
                               + [f"{m['class_accuracy']:.3f}"]])
display(Markdown(table))

# %% [markdown]
# ## Did the labels help?
#
# The same measurements as for the unconditional GAN of the same profile and seed, on the same
# number of samples (details of each metric in the evaluation chapter): lower FID is better,
# higher Inception Score is better (at most 10).

# %% tags=["hide-input"]
rows = [[name, f"{x['fid']:.2f}", f"{x['inception_score']:.2f}", f"{x['parzen_ll']:.0f} ± {x['parzen_se']:.0f}"]
        for name, x in (("GAN", mg), ("AC-GAN", m))]
display(Markdown(report.markdown_table(["model", "FID (classifier features)", "Inception Score", "Parzen log-likelihood"], rows)))
report.glue_number("acgan_fid", m["fid"], 2)
report.glue_number("gan_fid_vs", mg["fid"], 2)
report.glue_number("acgan_is", m["inception_score"], 2)
report.glue_number("gan_is_vs", mg["inception_score"], 2)
print(f"AC-GAN class accuracy {m['class_accuracy']:.3f}; FID {m['fid']:.2f} vs GAN {mg['fid']:.2f}; "
      f"IS {m['inception_score']:.2f} vs GAN {mg['inception_score']:.2f}")

# %% [markdown]
# With labels the FID in classifier features is {glue:text}`acgan_fid` against
# {glue:text}`gan_fid_vs` without, and the Inception Score {glue:text}`acgan_is` against
# {glue:text}`gan_is_vs`. The Inception Score rewards confident *and* balanced class
# predictions, which the AC-GAN gets by construction (every class is requested equally
# often), so the FID is the fairer of the two comparisons.
