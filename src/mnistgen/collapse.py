"""Which digit a GAN's samples crowd onto.

The quality check recorded during training keeps the share of the most frequent digit
(``top_class_share``), not which digit that is: the share says a generator crowds onto one digit,
the digit says onto which. Training code is frozen with the shipped edition, so the digit is found
afterwards: the samples of a run's last quality check are drawn again from its final weights (the
same noise, ``evaluators.QUALITY_SEED``, and the same number, ``quality_samples``) and classified by
the judge that scored them during training. The recomputed share is returned beside the digit, so a
caller can see that these are the samples the history scored (on the machine that trained them it
is the recorded share exactly; tests/test_collapse.py checks that on a trained run).
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import metrics
from .evaluators import QUALITY_SEED
from .runs import Run
from .train import to_uint8


@dataclass(frozen=True)
class TopDigit:
    """The most frequent digit among one run's last quality-check samples, and its share."""

    seed: int
    digit: int
    share: float
    confidence: float = 1.0  # the judge's mean probability of its own label: under NOISE_CONFIDENCE, noise


# Samples the judge labels with a mean top probability under this are noise, not digits (a trained
# generator's digits: above 0.9 in this report; grey noise: about 0.25).
NOISE_CONFIDENCE = 0.5


def is_noise(tops: Sequence[TopDigit]) -> bool:
    """Whether the judge reads these seeds' samples as noise (mean confidence under NOISE_CONFIDENCE)."""
    return bool(tops) and float(np.mean([t.confidence for t in tops])) < NOISE_CONFIDENCE


@torch.no_grad()
def last_check_samples(run: Run) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The samples ``run``'s last quality check scored, drawn again from its final weights: uint8
    (quality_samples, 28, 28) on the CPU, and the requested digits for an AC-GAN (``evaluators``
    draws them the same way, with every seed of a batch at once)."""
    cfg, G, device = run.cfg, run.models["G"].eval(), run.device
    n = cfg.quality_samples
    g = torch.Generator(device=device).manual_seed(QUALITY_SEED)
    z = torch.randn(n, cfg.z_dim, generator=g, device=device)
    labels = torch.arange(n, device=device) % cfg.n_classes if cfg.model == "acgan" else None
    x = G(z) if labels is None else G(z, labels)
    return to_uint8(x).reshape(n, 28, 28), None if labels is None else labels.cpu()


def top_digit(run: Run, judge: Run) -> TopDigit | None:
    """The most frequent digit (under ``judge``) of ``run``'s last quality check; None where the run's
    generator weights are not at hand (a shipped part without them) or it records no quality check."""
    cfg = run.cfg
    if cfg.model not in ("gan", "acgan") or not getattr(cfg, "quality_every", 0) or "G" not in run.models:
        return None
    images, _ = last_check_samples(run)
    probs, _ = metrics.classify(judge.models["net"], images)
    counts = torch.bincount(probs.argmax(1), minlength=probs.shape[1])
    return TopDigit(cfg.seed, int(counts.argmax()), float(counts.max()) / len(images), float(probs.max(1).values.mean()))


def top_digits(runs: Sequence[Run], judge: Run) -> list[TopDigit]:
    """:func:`top_digit` of every run whose generator is at hand."""
    return [t for r in runs if (t := top_digit(r, judge)) is not None]


def digits_text(tops: Sequence[TopDigit], n_runs: int) -> str:
    """Which digit the seeds crowd onto, most seeds first: "the digit 1 in 5 of 5 seeds", "the digit
    1 in 3 of 5 seeds, 7 in 2"; where only some of the ``n_runs`` seeds' generators are at hand, it
    says of which seeds it speaks ("the digit 1 in seed 0, the only seed whose generator is shipped")."""
    if not tops:
        return "which digit is not known: no seed's generator is shipped"
    if is_noise(tops):
        conf = float(np.mean([t.confidence for t in tops]))
        seeds = f"seed {tops[0].seed}" if len(tops) == 1 else f"{len(tops)} seeds"
        return (f"noise rather than digits in {seeds}: the yardstick's mean confidence in its label is {conf:.2f}, under "
                f"{NOISE_CONFIDENCE:g}")
    ranked = sorted(Counter(t.digit for t in tops).items(), key=lambda dc: (-dc[1], dc[0]))
    (d, c), rest = ranked[0], ranked[1:]
    more = "".join(f", {d2} in {c2}" for d2, c2 in rest)
    if len(tops) == n_runs:
        return f"the digit {d} in {c} of {n_runs} seeds{more}"
    if len(tops) == 1:
        return f"the digit {d} in seed {tops[0].seed}, the only one of {n_runs} seeds whose generator is shipped"
    return f"the digit {d} in {c} of the {len(tops)} seeds (of {n_runs}) whose generator is shipped{more}"


def digits_cell(tops: Sequence[TopDigit], n_runs: int) -> str:
    """:func:`digits_text` for a table cell: "1" where every seed's is the digit 1, "1 (3 of 5), 7 (2)"
    where they differ, "1 (s0)" where only seed 0's generator is at hand, "–" where none is."""
    if not tops:
        return "–"
    if is_noise(tops):
        return "noise (" + ", ".join(f"s{t.seed}" for t in tops) + ")"
    ranked = sorted(Counter(t.digit for t in tops).items(), key=lambda dc: (-dc[1], dc[0]))
    if len(tops) < n_runs:
        return ", ".join(str(d) for d, _ in ranked) + " (" + ", ".join(f"s{t.seed}" for t in tops) + ")"
    if len(ranked) == 1:
        return str(ranked[0][0])
    (d, c), rest = ranked[0], ranked[1:]
    return f"{d} ({c} of {n_runs}), " + ", ".join(f"{d2} ({c2})" for d2, c2 in rest)


# A digit is drawn "too few" or "too many" where its share over seeds is under 3/4, or over 4/3, of
# the training images' share, and a one-sample t-test over seeds puts it away from that share.
SHARE_RATIO = 0.75
# the rule's bounds as the pages say them: "3/4", "4/3"
SHARE_LOW, SHARE_HIGH = (str(Fraction(r).limit_denominator(100)) for r in (SHARE_RATIO, 1 / SHARE_RATIO))
SHARE_RULE = f"{SHARE_LOW} to {SHARE_HIGH}"


def off_shares(model: str, shares: Sequence[Sequence[float]], real: Sequence[float], alpha: float = 0.05) -> str:
    """Which digits ``model`` draws too rarely or too often: ``shares`` holds each seed's ten class
    shares, ``real`` the training images' (see ``SHARE_RATIO``); one seed alone: the size rule only."""
    from scipy import stats

    v, r = np.asarray(shares, dtype=float), np.asarray(real, dtype=float)
    mean = v.mean(0)

    def away(d: int) -> bool:
        if len(v) < 2 or v[:, d].std() == 0:
            return len(v) < 2
        return float(stats.ttest_1samp(v[:, d], r[d]).pvalue) < alpha

    def pct(d: int) -> str:
        return f"{d}s ({100 * mean[d]:.0f}% against {100 * r[d]:.0f}%)"

    few = [pct(d) for d in range(len(r)) if mean[d] < SHARE_RATIO * r[d] and away(d)]
    many = [pct(d) for d in range(len(r)) if mean[d] > r[d] / SHARE_RATIO and away(d)]
    if not few and not many:
        return f"the {model} draws no digit measurably outside {SHARE_RULE} of its share in the data"
    return f"the {model} draws " + "; ".join(p for p in (("too few " + ", ".join(few)) if few else "",
                                                       ("too many " + ", ".join(many)) if many else "") if p)
