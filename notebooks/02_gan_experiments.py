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
# # GAN experiments
#
# This chapter trains the paper's GAN on the 60,000 MNIST training images and shows what it
# learned: samples from the prior ({numref}`fig-gan-samples`), walks through the latent space
# ({numref}`fig-gan-interp`) and the course of training ({numref}`fig-gan-curves`,
# {numref}`fig-gan-strip`).
#
# **Model, as the paper states it.** The generator maps $z \sim \mathcal N(0, I_{64})$ through
# 64 → 256 → 256 → 784 units with LeakyReLU(0.2) and a tanh output; the discriminator maps an
# image through 784 → 256 → 256 → 1 units with LeakyReLU(0.2) and a sigmoid output. Pixels are
# scaled to $[-1, 1]$ for training and back to $[0, 1]$ for display. Both networks use Adam with
# learning rate 0.0005 and $k = 1$ discriminator step per generator step; the generator
# maximises $\log D(G(z))$ (the non-saturating loss of the previous chapter).
#
# **Choices the paper leaves open.** Batch size 128 and Adam $\beta_1 = 0.5$,
# $\beta_2 = 0.999$. $\beta_1 = 0.5$ is the setting Radford et al. (2016) found to stabilise GAN
# training (the default 0.9 keeps momentum through the discriminator's oscillations); batch 128
# is a conventional size for this model. Larger batches run faster per image on a CPU (see the
# README's performance section) but halve the number of updates per epoch, which changes the
# 300-epoch schedule the paper describes, so the paper profile keeps 128. The losses are computed from D's logit with
# binary cross-entropy, which equals the paper's $\log D$ and $\log(1-D)$ without rounding
# $\log 0$; $D(x)$ is reported through the sigmoid as in the paper. The generator step reuses
# the batch $G(z)$ of the discriminator step (as the pytorch/examples DCGAN loop does), after D
# has been updated.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
epochs = None  # None: the profile value
batch_size = None
lr = None
seed = None
device = None  # None: the profile value, "auto": CUDA when present, else CPU

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import torch
from mnistgen import plots, report
from mnistgen.config import make_config
from mnistgen.runs import get_run
from mnistgen.train import fixed_noise

params = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)
cfg = make_config("gan", profile, **params)
run = get_run(cfg, profile)
G = run.models["G"]
display(Markdown(report.provenance("gan", profile, params, [run])))

# %% [markdown]
# ## Samples from the prior
#
# {numref}`fig-gan-samples` shows $G(z)$ for 100 draws of $z$ from a fixed noise seed, so that
# reruns and other profiles show the same $z$ and can be compared image by image.
#
# ```{glue:figure} gan_samples
# :name: fig-gan-samples
# :figwidth: 480px
#
# 100 samples $G(z)$, $z \sim \mathcal N(0, I)$ from a fixed seed, after {glue:text}`gan_epochs` epochs.
# ```

# %% tags=["hide-input"]
with torch.no_grad():
    samples = G(fixed_noise(100, cfg.z_dim, run.device))
report.glue_text("gan_epochs", str(cfg.epochs))
report.glue_figure("gan_samples", plots.sample_grid(samples, nrow=10), profile)

# %% [markdown]
# ## Interpolations in latent space
#
# Each row of {numref}`fig-gan-interp` decodes points on a path between two random latent
# vectors. A straight line (lerp) between two Gaussian samples in 64 dimensions passes close to
# the origin, where the prior has almost no mass (a sample's norm concentrates near
# $\sqrt{64} = 8$); the spherical path (slerp; White 2016) keeps the norm. If the generator has
# learned a smooth map, the digits morph without jumps either way; differences between the two
# paths show how much the generator relies on the norm of $z$.
#
# ```{glue:figure} gan_interp
# :name: fig-gan-interp
#
# Interpolations between pairs of latent vectors: for each pair, linear (top) and spherical
# (bottom) paths, 10 steps from one endpoint to the other.
# ```

# %% tags=["hide-input"]
z = fixed_noise(8, cfg.z_dim, run.device, seed=7)
t = torch.linspace(0, 1, 10, device=run.device)
rows, labels = [], []
with torch.no_grad():
    for p in range(4):
        a, b = z[2 * p], z[2 * p + 1]
        rows += [G(plots.lerp(a, b, t)), G(plots.slerp(a, b, t))]
        labels += [f"pair {p + 1}, lerp", f"pair {p + 1}, slerp"]
report.glue_figure("gan_interp", plots.image_rows(rows, labels), profile)

# %% [markdown]
# ## Training
#
# {numref}`fig-gan-curves` follows the two losses and the discriminator's mean output on real and
# generated batches. At the equilibrium of the minimax game $p_g = p_{data}$ and
# $D^*(x) = 1/2$ everywhere (Goodfellow et al. 2014, Prop. 1), where D's loss is
# $2\log 2 \approx 1.386$. In the last epoch the discriminator gave real images
# {glue:text}`gan_d_real` and generated ones {glue:text}`gan_d_fake` on average.
#
# ```{glue:figure} gan_curves
# :name: fig-gan-curves
#
# Per-epoch means of the losses (left) and of $D(x)$ and $D(G(z))$ (right); dashed: the
# Nash-equilibrium value 1/2.
# ```
#
# ```{glue:figure} gan_strip
# :name: fig-gan-strip
#
# The same six latent vectors decoded at the end of evenly spaced epochs.
# ```

# %% tags=["hide-input"]
last = run.history[-1]
report.glue_number("gan_d_real", last["d_real"], 2)
report.glue_number("gan_d_fake", last["d_fake"], 2)
report.glue_figure("gan_curves", plots.gan_curves(run.history), profile)
report.glue_figure("gan_strip", plots.snapshot_strip(run.state.snapshots), profile)
print(f"final epoch: D loss {last['d_loss']:.2f}, G loss {last['g_loss']:.2f}, "
      f"D(x) {last['d_real']:.2f}, D(G(z)) {last['d_fake']:.2f}")
