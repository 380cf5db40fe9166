"""Paths through a generator's latent space: endpoints chosen by the yardstick, and straight (lerp)
against spherical (slerp) paths measured rather than judged by eye.

A straight line between two draws of N(0, I_d) passes near the origin (at its midpoint the norm
is about sqrt(d / 2) against sqrt(d) at the ends), where the prior has almost no mass; the
spherical path keeps the norm (White 2016). Whether that matters is an empirical question: if the
generator's midpoints on the straight line are less often read as a digit, the yardstick's
confidence there is lower than on the spherical path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from .metrics import classify
from .plots import lerp, slerp
from .train import fixed_noise, to_uint8

CONFIDENT = 0.9  # an endpoint counts as a digit where the yardstick gives its class at least this probability


@torch.no_grad()
def digit_pairs(G: torch.nn.Module, net: torch.nn.Module, z_dim: int, device: torch.device, n_pairs: int = 4,
                seed: int = 7, candidates: int = 64) -> tuple[torch.Tensor, list[tuple[int, int]], list[float]]:
    """``n_pairs`` endpoint pairs (2 * n_pairs, z_dim) of different digits: in order, the draws of the
    fixed noise ``seed`` whose samples the yardstick reads with probability >= CONFIDENT as a digit no
    earlier endpoint shows; where fewer exist (a generator that draws few digits), the most confident
    of the other draws. Returns the endpoints, each pair's digits and each endpoint's confidence."""
    z = fixed_noise(candidates, z_dim, device, seed=seed)
    probs, _ = classify(net, to_uint8(G(z)).reshape(-1, 28, 28))
    conf, digit = probs.max(1)
    chosen: list[int] = []
    for i in range(candidates):
        if conf[i] >= CONFIDENT and int(digit[i]) not in {int(digit[c]) for c in chosen}:
            chosen.append(i)
    chosen = chosen[:2 * n_pairs]
    rest = [int(i) for i in torch.argsort(conf, descending=True, stable=True) if int(i) not in chosen]
    chosen += rest[:2 * n_pairs - len(chosen)]
    pairs = [(int(digit[chosen[2 * p]]), int(digit[chosen[2 * p + 1]])) for p in range(n_pairs)]
    return z[chosen], pairs, [float(conf[c]) for c in chosen]


@dataclass(frozen=True)
class PathStats:
    """Per seed (one generator each), the mean over random pairs of the yardstick's confidence (its
    top class probability) at the path's midpoint, for lerp and slerp; the midpoint norms; the
    paired t-test over seeds."""

    lerp_conf: list[float]
    slerp_conf: list[float]
    lerp_norm: float
    slerp_norm: float
    end_norm: float
    p: float | None
    pairs: int = 200  # random pairs of prior draws per generator


@torch.no_grad()
def path_stats(generators: Sequence[torch.nn.Module], net: torch.nn.Module, z_dim: int, device: torch.device,
               pairs: int = 200, seed: int = 11) -> PathStats:
    """The midpoints (t = 1/2) of ``pairs`` random pairs of prior draws, the same for every generator."""
    z = fixed_noise(2 * pairs, z_dim, device, seed=seed)
    a, b = z[0::2], z[1::2]
    mid_l = (a + b) / 2
    mid_s = torch.stack([slerp(x, y, torch.tensor([0.5], device=device))[0] for x, y in zip(a, b)])
    lc, sc = [], []
    for G in generators:
        lc.append(float(classify(net, to_uint8(G(mid_l)).reshape(-1, 28, 28))[0].max(1).values.mean()))
        sc.append(float(classify(net, to_uint8(G(mid_s)).reshape(-1, 28, 28))[0].max(1).values.mean()))
    diffs = np.subtract(sc, lc)
    p = None if len(diffs) < 2 or diffs.std() == 0 else float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return PathStats(lc, sc, float(mid_l.norm(dim=1).mean()), float(mid_s.norm(dim=1).mean()),
                     float(z.norm(dim=1).mean()), p, pairs)


def path_sentence(s: PathStats, alpha: float = 0.05) -> str:
    from .report import values_text

    shown = "no test" if s.p is None else ("p < 0.001" if s.p < 0.001 else f"p = {s.p:.2g}")
    if s.p is None or s.p >= alpha:
        verdict = "the two paths' midpoints are read as digits equally confidently"
    elif np.mean(s.slerp_conf) > np.mean(s.lerp_conf):
        verdict = "the spherical path's midpoints are read as digits more confidently"
    else:
        verdict = "the straight path's midpoints are read as digits more confidently"
    return (f"Over {s.pairs:,} random pairs of prior draws, the straight path's midpoint has norm {s.lerp_norm:.2f} on "
            f"average and the spherical one's {s.slerp_norm:.2f} (the ends: {s.end_norm:.2f}); the yardstick's "
            f"confidence in its top digit at the midpoint is {values_text(s.lerp_conf, 3)} on the straight path and "
            f"{values_text(s.slerp_conf, 3)} on the spherical one (mean ± sd over {len(s.lerp_conf)} seeds; paired "
            f"t-test over seeds: {shown}): {verdict}.")
