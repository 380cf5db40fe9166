"""What the objective chapter's longer runs show: the saturating and the non-saturating generator
loss, each at k discriminator steps per generator step, compared by the samples they draw.

Every sentence is computed from the runs' quality checks and tested over seeds (Welch), so the page
says what its own numbers support under any profile. Two readings guard the FID comparison:

- **At the last check and at each seed's lowest check.** A GAN's FID falls, bottoms out and (in
  this report's sweep) rises again; a loss that learns more slowly is at another point of that curve
  at any one epoch, so the last check alone could rank the speed of the curve, not its depth.
- **Only where the samples are digits of some variety.** An Inception Score under ``IS_VARIETY``
  says the judge reads the samples as one digit (a collapsed generator) or as none (noise): an FID
  between two such generators ranks two failures, and the sentence says that instead of "better".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .findings import COLLAPSE_SHARE, compare
from .report import lowest_check, p_text, quality_checks, values_text

History = Sequence[dict[str, Any]]

# An Inception Score below this: the judge reads the samples as about one digit, or as none
# (1 for one confident class or for no confident class at all; 10 for ten balanced, confident digits).
IS_VARIETY = 2.0


@dataclass(frozen=True)
class LossRuns:
    """One setting of the chapter: the generator loss, k, and its seeds' histories; ``digits`` says
    which digit the last check's samples crowd onto (``collapse.digits_text``), where known."""

    saturating: bool
    k: int
    histories: list[History]
    digits: str = ""
    digits_cell: str = "–"
    noise: bool = False  # the judge reads its samples as noise, not digits (collapse.is_noise)

    @property
    def name(self) -> str:
        return f"{'saturating' if self.saturating else 'non-saturating'}, k = {self.k}"

    def last(self, key: str) -> list[float]:
        return [quality_checks(h, key)[-1][1] for h in self.histories]

    def lowest(self) -> tuple[list[float], list[int]]:
        """Each seed's lowest FID check and the epoch where it came."""
        lows = [lowest_check(h) for h in self.histories]
        return [v for _, v in lows], [e for e, _ in lows]


def _span(epochs: Sequence[int]) -> str:
    return f"epoch {min(epochs)}" if min(epochs) == max(epochs) else f"epochs {min(epochs)}–{max(epochs)}"


def _word(verdict: str) -> str:
    return {"better": "better than", "worse": "worse than", "indistinguishable": "not measurably different from"}[verdict]


def regime_sentence(sat: LossRuns, ns: LossRuns) -> str:
    """The two losses at one k: whether either draws a variety of digits, and where both do, their
    FIDs at the last check and at each seed's lowest check (Welch over seeds)."""
    k = sat.k
    is_sat, is_ns = sat.last("inception_score"), ns.last("inception_score")
    fid_sat, fid_ns = sat.last("fid"), ns.last("fid")
    poor = [r for r, v in ((sat, is_sat), (ns, is_ns)) if np.mean(v) < IS_VARIETY]
    if len(poor) == 2:
        return (f"with k = {k} neither loss's generator draws a variety of digits (Inception Score "
                f"{values_text(is_sat, 2)} with the saturating loss and {values_text(is_ns, 2)} with the non-saturating "
                f"one, under {IS_VARIETY:g}, the threshold used here): their FIDs ({values_text(fid_sat, 1)} against "
                f"{values_text(fid_ns, 1)}, {p_text(fid_sat, fid_ns)}) differ, but as a ranking of two failures")
    last = compare("saturating", fid_sat, "non-saturating", fid_ns)
    (low_sat, at_sat), (low_ns, at_ns) = sat.lowest(), ns.lowest()
    low = compare("saturating", low_sat, "non-saturating", low_ns)
    text = (f"with k = {k} the saturating loss's samples are {_word(last.verdict)} the non-saturating one's by FID at "
            f"the last check ({values_text(fid_sat, 1)} against {values_text(fid_ns, 1)}, {p_text(fid_sat, fid_ns)})")
    also = ("also" if low.verdict == last.verdict else
             {"better": "better", "worse": "worse", "indistinguishable": "not measurably different"}[low.verdict])
    text += (f" and {also} at each seed's lowest check ({values_text(low_sat, 1)} at {_span(at_sat)} against "
             f"{values_text(low_ns, 1)} at {_span(at_ns)}, {p_text(low_sat, low_ns)})")
    if poor:
        text += (f"; the {poor[0].name.split(',')[0]} generator draws no variety of digits (Inception Score "
                 f"{values_text(poor[0].last('inception_score'), 2)}, under {IS_VARIETY:g})")
    return text


def collapse_sentence(settings: Sequence[LossRuns]) -> str:
    """How many seeds of each setting have one digit over ``COLLAPSE_SHARE`` of the last check's samples."""
    over, noise = [], []
    for r in settings:
        shares = r.last("top_class_share")
        n = sum(s > COLLAPSE_SHARE for s in shares)
        if r.noise:
            noise.append(f"{r.name} draws {r.digits}, so its share of one label ({values_text(shares, 2)}) is no collapse")
        elif n:
            over.append(f"{n} of {len(shares)} seeds of {r.name} ({values_text(shares, 2)}"
                        + (f"; {r.digits}" if r.digits else "") + ")")
    where = "; ".join(over) if over else "no seed of any setting that draws digits"
    return (f"One digit makes up more than {COLLAPSE_SHARE:g} of the last check's samples (the collapse threshold "
            f"used here; balanced digits: 0.1) in {where}." + "".join(f" {n[0].upper()}{n[1:]}." for n in noise))


@dataclass(frozen=True)
class LongFindings:
    text: str          # what the section says, every comparison tested
    header: list[str]  # its table
    rows: list[list[str]]
    ending: str        # why the rest of the report keeps the paper's loss, in the light of k = 1
    short: str         # for the findings box: the comparisons and the ending, without the collapse count


def long_findings(settings: Mapping[tuple[int, bool], LossRuns], epochs: int, beta1: float, batch_size: int) -> LongFindings:
    """The section on the four settings trained for ``epochs``: per k, :func:`regime_sentence`; the
    collapse count; the table; and the chapter's ending, which says what k = 1 (the paper's regime)
    found of the loss the report keeps."""
    ks = sorted({k for k, _ in settings})
    verdicts = [regime_sentence(settings[k, True], settings[k, False]) for k in ks]
    lead = (f"Trained for {epochs} epochs (β1 = {beta1}, batch {batch_size}: the profile's default GAN settings, which "
            "the sweep's pick need not share, as in the short runs")
    text = f"{lead} above), " + "; ".join(verdicts) + ". " + collapse_sentence([settings[key] for key in sorted(settings)])
    header = ["generator loss, regime", "FID ↓ (last check)", "lowest FID (epochs)", "Inception Score ↑",
              "most frequent digit's share", "that digit"]
    rows = []
    for key in sorted(settings):
        r = settings[key]
        lows, at = r.lowest()
        span = _span(at).split(" ", 1)[1].replace("–", "\u2060–\u2060")  # word joiners: no break inside a range
        rows.append([r.name.replace(" = ", "\u00a0=\u00a0"), values_text(r.last("fid"), 1), f"{values_text(lows, 1)} ({span})",
                     values_text(r.last("inception_score"), 2), values_text(r.last("top_class_share"), 2), r.digits_cell])
    k1 = min(ks)
    sat, ns = settings[k1, True], settings[k1, False]
    c = compare("saturating", sat.last("fid"), "non-saturating", ns.last("fid"))
    if all(np.mean(r.last("inception_score")) < IS_VARIETY for r in (sat, ns)):
        ending = (f"The rest of this report uses the non-saturating loss, as the paper does; in the paper's regime "
                  f"(k = {k1}) neither loss's generator drew a variety of digits after {epochs} epochs, so sample "
                  "quality does not choose between them here.")
    elif c.verdict == "better":
        ending = (f"The rest of this report keeps the paper's non-saturating loss, to reproduce the paper, although in "
                  f"the paper's regime (k = {k1}) the saturating loss drew the better samples here after {epochs} epochs "
                  f"({values_text(sat.last('fid'), 1)} against {values_text(ns.last('fid'), 1)}); that was measured at "
                  f"β1 = {beta1}, batch {batch_size} only.")
    elif c.verdict == "worse":
        ending = (f"The rest of this report uses the non-saturating loss, as the paper does; in the paper's regime "
                  f"(k = {k1}) it also drew the better samples here.")
    else:
        ending = (f"The rest of this report uses the non-saturating loss, as the paper does; in the paper's regime "
                  f"(k = {k1}) the two losses' samples were not measurably different after {epochs} epochs.")
    short = f"{lead} of the objective chapter), " + "; ".join(verdicts) + ". " + ending
    return LongFindings(text, header, rows, ending, short)


# The chapter's second regime by default: the discriminator kept ahead with this many steps per
# generator step (the chapter's `strong_k` parameter; the paper: 1).
STRONG_K = 5


def long_groups(profile: str, strong_k: int = STRONG_K) -> dict[tuple[int, bool], str]:
    """The follow-up groups that train the four settings longer, by (k, saturating); none where
    the profile's ``followup`` section names no length."""
    from .config import make_config

    epochs = make_config("followup", profile).objective_epochs
    return {(k, sat): f"gan objective saturating={sat} k={k} epochs={epochs}"
            for k in (1, strong_k) for sat in (False, True)} if epochs else {}


def loss_runs(runs: Mapping[tuple[int, bool], Sequence[Any]], judge: Any) -> dict[tuple[int, bool], LossRuns]:
    """The four groups' runs as :class:`LossRuns`, each with the digit its last check crowds onto
    (``collapse``: from the generators the edition ships)."""
    from . import collapse

    out = {}
    for (k, sat), rs in runs.items():
        tops = collapse.top_digits(rs, judge)
        out[k, sat] = LossRuns(sat, k, [r.history for r in rs], collapse.digits_text(tops, len(rs)),
                               collapse.digits_cell(tops, len(rs)), collapse.is_noise(tops))
    return out
