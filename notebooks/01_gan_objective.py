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
# # The GAN objective
#
# A generative adversarial network {cite:p}`goodfellow2014` trains two networks against each
# other. The generator $G$ maps noise $z \sim p_z = \mathcal N(0, I)$ to an image; the
# discriminator $D$ outputs the probability that its input came from the data rather than from
# $G$. They play the two-player minimax game
#
# $$
# \min_G \max_D V(D, G) = \mathbb E_{x \sim p_{data}}[\log D(x)]
#   + \mathbb E_{z \sim p_z}[\log(1 - D(G(z)))].
# $$ (eq-gan)
#
# For a fixed $G$ the best discriminator is $D^*(x) = p_{data}(x) / (p_{data}(x) + p_g(x))$,
# and with it the game's value is $-\log 4 + 2\,\mathrm{JSD}(p_{data} \,\|\, p_g)$: the global
# optimum is $p_g = p_{data}$, where $D^* = 1/2$ everywhere {cite:p}`goodfellow2014`.
#
# ## Why the paper's generator does not minimise the minimax loss
#
# Write $D(x) = \sigma(\ell(x))$ with logit $\ell$. The generator's term in {eq}`eq-gan`,
# $\log(1 - \sigma(\ell))$, has derivative $-\sigma(\ell) = -D(G(z))$ with respect to the logit.
# Once $D$ learns to reject the generator's poor early samples confidently,
# $D(G(z)) \approx 0$ and the gradient that reaches $G$ vanishes: the loss *saturates*. The non-saturating
# alternative maximises $\log D(G(z))$ instead; its derivative $1 - D(G(z))$ is largest exactly
# where the generator is worst, and the game keeps the same fixed point. {numref}`fig-obj-theory`
# plots both derivatives.
#
# ```{glue:figure} obj_theory
# :name: fig-obj-theory
# :figwidth: 520px
#
# Magnitude of the gradient of each generator loss with respect to D's logit on a generated
# sample, as a function of $D(G(z))$. Shaded: the range of $D(G(z))$ over the first training
# steps of the run below.
# ```
#
# ## Measured: both losses from the same start
#
# Two generators are trained from the same initial weights, data order and noise, differing only
# in the generator loss, for a few epochs; the pair is repeated for each of the profile's seeds
# ({glue:text}`obj_n_seeds` pairs), and every number below is a mean ± standard deviation over them. {numref}`fig-obj-measured` shows, at
# every step, the norm of the gradient of the generator's loss with respect to all of G's
# parameters, and the discriminator's mean output on generated images.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
epochs = 2  # a short run shows the early phase, where the two losses differ
seeds = None  # None: the profile's seeds (trained as one batch)
device = None

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import matplotlib.pyplot as plt
import numpy as np
import torch
from mnistgen import plots, report
from mnistgen.config import make_config
from mnistgen.runs import get_runs
from mnistgen.train import fixed_noise

params = dict(epochs=epochs, seeds=seeds, device=device)
ev = make_config("evaluation", profile, seeds=seeds, device=device)
runs = {}
for saturating in (False, True):  # no quality checks: this chapter is about the first steps
    cfg = make_config("gan", profile, saturating=saturating, epochs=epochs, device=device, quality_every=0)
    runs[saturating] = get_runs(cfg, profile, list(ev.seeds), log_steps=True)
report.glue_text("obj_n_seeds", str(len(ev.seeds)))
display(Markdown(report.provenance("gan_objective", profile, params, runs[False] + runs[True])))


def steps(run, key):
    return np.concatenate([row["steps"][key] for row in run.history])


# %% tags=["hide-input"]
# per loss, one array of per-step values for each seed
dgz = {s: [steps(r, "d_fake") for r in rs] for s, rs in runs.items()}
grad = {s: [steps(r, "g_grad_norm") for r in rs] for s, rs in runs.items()}
early = slice(0, 50)

p = np.linspace(1e-3, 1 - 1e-3, 200)
fig, ax = plt.subplots(figsize=(5.2, 3.4))
ax.plot(p, p, label=r"saturating: $\log(1 - D(G(z)))$, slope $D$")
ax.plot(p, 1 - p, label=r"non-saturating: $-\log D(G(z))$, slope $1 - D$")
lo, hi = np.percentile(np.concatenate([d[early] for s in (False, True) for d in dgz[s]]), [0, 100])
ax.axvspan(lo, hi, color="gray", alpha=0.2, label="first 50 steps, every seed")
ax.set_xlabel("D(G(z))")
ax.set_ylabel("|d loss / d logit|")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
report.glue_figure("obj_theory", fig, profile)


# %% tags=["hide-input"]
def smooth(y, w=10):
    return np.convolve(y, np.ones(w) / w, mode="valid") if len(y) > w else y


fig, (a1, a2) = plt.subplots(2, 1, figsize=(plots.COLUMN_IN, 6.0), sharex=True)
for s, name, color in ((False, "non-saturating", "C0"), (True, "saturating", "C1")):
    for i, (g, d) in enumerate(zip(grad[s], dgz[s])):  # one line per seed
        a1.plot(smooth(g), color=color, lw=1, alpha=0.7, label=name if i == 0 else None)
        a2.plot(smooth(d), color=color, lw=1, alpha=0.7, label=name if i == 0 else None)
a1.set_yscale("log")
a1.set_ylabel(r"$\|\nabla_{\theta_G}\, \mathrm{loss}\|$ (10-step mean)")
a2.axhline(0.5, color="gray", ls="--", lw=1, label="equilibrium, 1/2")
a2.set_xlabel("generator step")
a2.set_ylabel("mean D(G(z))")
a2.set_ylim(0, 1)
a1.legend(frameon=False)
a2.legend(frameon=False)
fig.tight_layout()
report.glue_figure("obj_measured", fig, profile)

ratio = [a[early].mean() / b[early].mean() for a, b in zip(grad[False], grad[True])]
ratio_all = [np.median(a) / np.median(b) for a, b in zip(grad[False], grad[True])]
report.glue_mean_sd("obj_grad_ratio", ratio, 1)
report.glue_mean_sd("obj_grad_ratio_all", ratio_all, 1)
report.glue_mean_sd("obj_dgz_start", [d[:10].mean() for d in dgz[False]], 2)
report.glue_mean_sd("obj_dgz_ns", [d[-50:].mean() for d in dgz[False]], 2)
report.glue_mean_sd("obj_dgz_sat", [d[-50:].mean() for d in dgz[True]], 2)
print("generator-gradient norm ratio (non-saturating / saturating) over the first 50 steps, per seed:",
      ", ".join(f"{r:.1f}" for r in ratio))

# %% [markdown]
# ```{glue:figure} obj_measured
# :name: fig-obj-measured
#
# Top: norm of the generator's gradient per step (log scale). Bottom: mean $D(G(z))$ per step.
# One line per seed; the two losses of a seed start from the same weights, data order and noise.
# ```
#
# At the very start both networks are untrained and $D(G(z))$ is near 1/2
# ({glue:text}`obj_dgz_start` over the first 10 steps), where the two slopes are equal. Over
# the first 50 steps the non-saturating loss gave the generator gradients
# {glue:text}`obj_grad_ratio` times larger than the saturating one, and over the whole run
# {glue:text}`obj_grad_ratio_all` times larger (ratio of medians): as soon as the
# discriminator learns to reject samples, the saturating loss starves the generator. Adam
# divides each update by a running root-mean-square of the gradient, which hides part of
# this difference in scale from the weights; what it cannot hide is the direction, which for
# the saturating loss is dominated by the samples D already finds convincing, since its
# per-sample weight is $D(G(z))$. By the end of the short run the discriminator's mean output on
# generated images was {glue:text}`obj_dgz_ns` with the non-saturating loss and
# {glue:text}`obj_dgz_sat` with the saturating one.
# {numref}`fig-obj-samples` shows what each generator draws at that point.
#
# ```{glue:figure} obj_samples
# :name: fig-obj-samples
#
# Samples from the same fixed noise after the short run, seed 0: non-saturating (top two rows)
# and saturating (bottom two rows) generator loss.
# ```
#
# The rest of this report uses the non-saturating loss, as the paper does.

# %% tags=["hide-input"]
first = {s: rs[0] for s, rs in runs.items()}
z = fixed_noise(20, first[False].cfg.z_dim, first[False].device)
with torch.no_grad():
    rows = [first[s].models["G"](z[i * 10:(i + 1) * 10]) for s in (False, True) for i in range(2)]
report.glue_figure("obj_samples", plots.image_rows(rows, ["non-saturating", "non-saturating",
                                                          "saturating", "saturating"]), profile)
