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
# ## Why the paper does not minimise equation {eq}`eq-gan` for G
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
# Two generators are trained from the same initial weights, data order and noise (seed below),
# differing only in the generator loss, for a few epochs. {numref}`fig-obj-measured` shows, at
# every step, the norm of the gradient of the generator's loss with respect to all of G's
# parameters, and the discriminator's mean output on generated images.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper: base settings from profiles/<profile>.yml
epochs = 2  # a short run shows the early phase, where the two losses differ
seed = None
device = None

# %% tags=["hide-input"]
from IPython.display import Markdown, display

import matplotlib.pyplot as plt
import numpy as np
import torch
from mnistgen import plots, report
from mnistgen.config import make_config
from mnistgen.runs import get_run
from mnistgen.train import fixed_noise

params = dict(epochs=epochs, seed=seed, device=device)
runs = {}
for saturating in (False, True):
    cfg = make_config("gan", profile, saturating=saturating, **params)
    runs[saturating] = get_run(cfg, profile, log_steps=True)
display(Markdown(report.provenance("gan_objective", profile, params, list(runs.values()))))


def steps(run, key):
    return np.concatenate([row["steps"][key] for row in run.history])


# %% tags=["hide-input"]
dgz = {s: steps(r, "d_fake") for s, r in runs.items()}
grad = {s: steps(r, "g_grad_norm") for s, r in runs.items()}
early = slice(0, 50)

p = np.linspace(1e-3, 1 - 1e-3, 200)
fig, ax = plt.subplots(figsize=(5.2, 3.4))
ax.plot(p, p, label=r"saturating: $\log(1 - D(G(z)))$, slope $D$")
ax.plot(p, 1 - p, label=r"non-saturating: $-\log D(G(z))$, slope $1 - D$")
lo, hi = np.percentile(np.concatenate([dgz[False][early], dgz[True][early]]), [0, 100])
ax.axvspan(lo, hi, color="gray", alpha=0.2, label="first 50 steps")
ax.set_xlabel("D(G(z))")
ax.set_ylabel("|d loss / d logit|")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
report.glue_figure("obj_theory", fig, profile)


# %% tags=["hide-input"]
def smooth(y, w=10):
    return np.convolve(y, np.ones(w) / w, mode="valid") if len(y) > w else y


fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
for s, name in ((False, "non-saturating"), (True, "saturating")):
    a1.plot(smooth(grad[s]), label=name)
    a2.plot(smooth(dgz[s]), label=name)
a1.set_yscale("log")
a1.set_xlabel("generator step")
a1.set_ylabel(r"$\|\nabla_{\theta_G}\, \mathrm{loss}\|$ (10-step mean)")
a2.axhline(0.5, color="gray", ls="--", lw=1, label="equilibrium, 1/2")
a2.set_xlabel("generator step")
a2.set_ylabel("mean D(G(z))")
a2.set_ylim(0, 1)
a1.legend(frameon=False)
a2.legend(frameon=False)
fig.tight_layout()
report.glue_figure("obj_measured", fig, profile)

ratio = grad[False][early].mean() / grad[True][early].mean()
ratio_all = np.median(grad[False]) / np.median(grad[True])
report.glue_number("obj_grad_ratio", ratio, 1)
report.glue_number("obj_grad_ratio_all", ratio_all, 1)
report.glue_number("obj_dgz_start", dgz[False][:10].mean(), 2)
report.glue_number("obj_dgz_ns", dgz[False][-50:].mean(), 2)
report.glue_number("obj_dgz_sat", dgz[True][-50:].mean(), 2)
print(f"mean generator-gradient norm over the first 50 steps: non-saturating {grad[False][early].mean():.3g}, "
      f"saturating {grad[True][early].mean():.3g} (ratio {ratio:.1f})")

# %% [markdown]
# ```{glue:figure} obj_measured
# :name: fig-obj-measured
#
# Left: norm of the generator's gradient per step (log scale). Right: mean $D(G(z))$ per step.
# Same initial weights, data order and noise for both runs.
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
# Samples from the same fixed noise after the short run: non-saturating (top two rows) and
# saturating (bottom two rows) generator loss.
# ```
#
# The rest of this report uses the non-saturating loss, as the paper does.

# %% tags=["hide-input"]
z = fixed_noise(20, runs[False].cfg.z_dim, runs[False].device)
with torch.no_grad():
    rows = [runs[s].models["G"](z[i * 10:(i + 1) * 10]) for s in (False, True) for i in range(2)]
report.glue_figure("obj_samples", plots.image_rows(rows, ["non-saturating", "non-saturating",
                                                          "saturating", "saturating"]), profile)
