"""Does a generator copy its training images? Nearest training image of every judged sample,
against the same distance for real test images (which no model trained on).

A sample as close to its nearest training image as a new real digit is to its own is no copy;
a generator that memorised would put many samples much closer. So for every seed with weights
the distances of ``n`` samples are compared with those of ``n`` random test images, in pixels and
in the first yardstick's features, and the per-seed differences of the means are tested over
seeds (one-sample t-test against 0). The closest sample-training pairs over all seeds, the
likeliest copies, are what a reader should look at, not random ones.

Exact nearest neighbours of thousands of queries among 50,000 images: float32 distances (one
matrix product) pick a few candidates, and float64 distances re-rank them, so the neighbour and
its distance do not depend on the machine's float32 rounding (``nearest``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

CANDIDATES = 8  # float32 candidates re-ranked in float64: far more than float32 error can reorder


@torch.no_grad()
def nearest(queries: torch.Tensor, pool: torch.Tensor, batch_size: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``queries`` (Q, D) the index of its nearest row of ``pool`` (N, D) and the
    Euclidean distance to it, in float64 (the earlier index of two equally near)."""
    q32 = queries.float()
    q_sq = q32.pow(2).sum(1, keepdim=True)
    k = min(CANDIDATES, len(pool))
    best_d = torch.full((len(q32), k), float("inf"))
    best_i = torch.zeros((len(q32), k), dtype=torch.long)
    for start in range(0, len(pool), batch_size):
        p = pool[start:start + batch_size].float()
        d = q_sq - 2 * q32 @ p.T + p.pow(2).sum(1)  # squared distances, float32
        d_all = torch.cat([best_d, d], 1)
        i_all = torch.cat([best_i, torch.arange(start, start + len(p)).expand(len(q32), -1)], 1)
        best_d, order = d_all.topk(k, dim=1, largest=False)
        best_i = i_all.gather(1, order)
    exact = (queries.double().unsqueeze(1) - pool[best_i].double()).pow(2).sum(-1).sqrt()  # (Q, k) float64
    j = _argmin_lowest(exact, best_i)  # the nearest in float64; among equal distances the lowest index
    return best_i.gather(1, j[:, None])[:, 0], exact.gather(1, j[:, None])[:, 0]


def _argmin_lowest(dist: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Column of the smallest ``dist`` per row, the one with the lower ``idx`` among equal distances."""
    order = torch.argsort(idx, dim=1, stable=True)  # candidates by index, then a stable sort by distance
    by_dist = torch.argsort(dist.gather(1, order), dim=1, stable=True)
    return order.gather(1, by_dist[:, :1])[:, 0]


@dataclass(frozen=True)
class Memorisation:
    """Per seed, the mean distance of its samples to their nearest training image (pixels in [0, 1]
    and yardstick features); the same for real test images; the test over seeds; the closest pairs."""

    pixel: list[float]
    feature: list[float]
    test_pixel: float
    test_feature: float
    p_pixel: float | None
    p_feature: float | None
    near_share: list[float]  # per seed: share of samples nearer (in pixels) than the nearest 1 % of test images
    near_share_feature: list[float]  # the same in the yardstick's features
    closest: list[tuple[float, int, int, int]]  # (pixel distance, seed index, sample index, training index)
    closest_feature: list[tuple[float, int, int, int]]  # the same, nearest in the yardstick's features
    test_closest: list[tuple[float, int, int]]  # (pixel distance, test index, training index): the scale


def _p_txt(p: float | None) -> str:
    return "no test" if p is None else ("p < 0.001" if p < 0.001 else "p > 0.99" if p > 0.99 else f"p = {p:.2g}")


def one_sample_p(diffs: Sequence[float]) -> float | None:
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2 or d.std() == 0:
        return None
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def measure(samples: Sequence[torch.Tensor], sample_features: Sequence[torch.Tensor], train: torch.Tensor,
            train_features: torch.Tensor, test: torch.Tensor, test_features: torch.Tensor,
            show: int = 8) -> Memorisation:
    """``samples`` (per seed, (n, 784) in [0, 1]) and their yardstick features against the training
    images they could copy and the same number of real test images."""
    t_idx, t_pix = nearest(test, train)
    t_feat = nearest(test_features, train_features)[1]
    cut, cut_f = float(torch.quantile(t_pix, 0.01)), float(torch.quantile(t_feat, 0.01))
    pixel, feature, share, share_f, pairs, feature_pairs = [], [], [], [], [], []
    for s, (x, f) in enumerate(zip(samples, sample_features)):
        i, d = nearest(x, train)
        fi, fd = nearest(f, train_features)
        pixel.append(float(d.mean()))
        feature.append(float(fd.mean()))
        share.append(float((d < cut).double().mean()))
        share_f.append(float((fd < cut_f).double().mean()))
        pairs += [(float(d[j]), s, int(j), int(i[j])) for j in torch.argsort(d, stable=True)[:show].tolist()]
        feature_pairs += [(float(fd[j]), s, int(j), int(fi[j])) for j in torch.argsort(fd, stable=True)[:show].tolist()]
    test_pairs = [(float(t_pix[j]), int(j), int(t_idx[j])) for j in torch.argsort(t_pix, stable=True)[:show].tolist()]
    return Memorisation(pixel, feature, float(t_pix.mean()), float(t_feat.mean()),
                        one_sample_p([p - float(t_pix.mean()) for p in pixel]),
                        one_sample_p([f - float(t_feat.mean()) for f in feature]), share, share_f, sorted(pairs)[:show],
                        sorted(feature_pairs)[:show], test_pairs)


def sentence(m: Memorisation, model: str, n: int) -> str:
    """What the distances say, with the test behind each comparison (ALPHA = 0.05)."""
    from .report import ALPHA, values_text

    def word(values: list[float], base: float, p: float | None) -> str:
        if p is None or p >= ALPHA:
            return "not measurably nearer or farther than"
        return "closer to the training images than" if np.mean(values) < base else "farther from the training images than"

    return (f"In pixels, the {model}'s samples lie {values_text(m.pixel, 2)} from their nearest training image (mean "
            f"± sd over {len(m.pixel)} seeds of each seed's mean over {n:,} samples), real test images "
            f"{m.test_pixel:.2f}: the samples are {word(m.pixel, m.test_pixel, m.p_pixel)} new real digits "
            f"(one-sample t-test of the per-seed differences over seeds: {_p_txt(m.p_pixel)}). In the first yardstick's "
            f"features, {values_text(m.feature, 2)} against {m.test_feature:.2f}: "
            f"{word(m.feature, m.test_feature, m.p_feature)} new real digits ({_p_txt(m.p_feature)}). "
            f"The share of samples nearer to a training image than the nearest 1 % of test images are is "
            f"{values_text([100 * s for s in m.near_share], 1)} % in pixels and "
            f"{values_text([100 * s for s in m.near_share_feature], 1)} % in features; a generator that copied would put "
            "far more than 1 % there. "
            + tail_verdict(m.near_share, m.near_share_feature, word(m.pixel, m.test_pixel, m.p_pixel).startswith("closer")
                           or word(m.feature, m.test_feature, m.p_feature).startswith("closer")))


def tail_p(near_share: Sequence[float]) -> float | None:
    """One-sided one-sample t-test of the per-seed shares of samples in the test images' nearest 1 %
    against 0.01 (more there than new real digits put there)."""
    shares = np.asarray(near_share, dtype=float)
    if len(shares) < 2 or shares.std(ddof=1) == 0:
        return None
    return float(stats.ttest_1samp(shares, 0.01, alternative="greater").pvalue)


def heavy_tail(near_share: Sequence[float]) -> tuple[bool, float | None]:
    """Whether the seeds put more samples in the 1 % tail than real test images do (:func:`tail_p`
    under ALPHA and a mean over 1 %; with no test, one seed or no spread, the shares alone decide), and p."""
    from .report import ALPHA

    p = tail_p(near_share)
    return (p is None or p < ALPHA) and float(np.mean(near_share)) > 0.01, p


def copy_finding(mems: dict[str, Memorisation], n: int) -> str:
    """The findings box's line on copying: per model its 1 % tails (pixels, features) and the tests."""
    from .report import values_text

    parts, above = [], []
    for m, x in mems.items():
        parts.append(f"the {m}'s {values_text([100 * s for s in x.near_share], 1)} % in pixels "
                     f"({_p_txt(tail_p(x.near_share))}) and {values_text([100 * s for s in x.near_share_feature], 1)} % "
                     f"in the yardstick's features ({_p_txt(tail_p(x.near_share_feature))})")
        if heavy_tail(x.near_share)[0] or heavy_tail(x.near_share_feature)[0]:
            above.append(m)
    text = (f"Do the GANs copy their training images? Of the {n:,} judged samples of each seed, "
            + "; ".join(parts) + " lie nearer to a training image than the nearest 1 % of real test images do "
            "(one-sided t-tests over seeds against 1 %): ")
    if not above:
        return text + "no more than real test images do, so no sign of copying."
    return text + "more than real test images do for the " + " and the ".join(above) + \
        "; the evaluation chapter shows the closest pairs."


def tail_verdict(near_share: list[float], near_share_feature: list[float], closer_on_average: bool) -> str:
    """What the 1 % tails say about copying (one-sided one-sample t-tests of the per-seed shares
    against 0.01, in pixels and in features): the measure that speaks to copies, where the averages
    can only say "nearer"."""
    (a_pix, p_pix), (a_feat, p_feat) = heavy_tail(near_share), heavy_tail(near_share_feature)
    lead = ("Nearer on average is not a copy (a copy lies at distance zero from its original); the tails are the "
            "test of copying, and they " if closer_on_average else "Those tails ")
    tests = f"one-sided t-tests against 1 %: pixels {_p_txt(p_pix)}, features {_p_txt(p_feat)}"
    if not a_pix and not a_feat:
        return lead + f"hold no more samples than real test images put there ({tests}): no sign of copying."
    where = " and ".join(w for w, a in (("pixels", a_pix), ("features", a_feat)) if a)
    return lead + f"hold more samples than real test images put there in {where} ({tests}): the closest pairs below " \
        "are the ones to look at."
