"""What the GAN sweep's histories show, as numbers and as the sentences the pages print.

Every comparison here is a test over seeds (``report.seed_test``: Welch's t-test at
``report.ALPHA``), so a sentence says "better" only where the numbers beside it support it:

- **equal updates.** The sweep's settings train for the same number of *epochs*, so a batch of 64
  makes twice the generator updates of a batch of 128. :func:`at_updates` reads every setting at
  the largest update count all of them reach (each seed's quality check nearest to it) and
  :func:`compare` tests every pair there, beside the same pairs at equal epochs;
  :func:`factor_sentence` says which of beta1 and the batch size the difference is made of.
- **trends.** "Still improving" or "getting worse" is the slope of a least-squares line through
  the last third of a run's quality checks (:func:`trend`), not the last two (noisy) checks; the
  slopes over seeds are tested against zero (one-sample t-test).

The functions take plain histories (lists of per-epoch dicts with ``epoch`` and, at a quality
check, ``fid``), so tests feed them crafted ones; nothing here reads files or trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .report import ALPHA, check_nearest, lowest_check, p_text, quality_checks, seed_test, values_text, verdict

History = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Setting:
    """One setting of the sweep: its name, every seed's history, and its generator updates per epoch."""

    name: str
    beta1: float
    batch_size: int
    histories: Sequence[History]
    updates_per_epoch: int

    @property
    def epochs(self) -> int:
        return int(self.histories[0][-1]["epoch"])

    @property
    def updates(self) -> int:
        return self.epochs * self.updates_per_epoch


def common_updates(settings: Sequence[Setting]) -> int:
    """The largest number of generator updates every setting reaches."""
    return min(s.updates for s in settings)


def at_updates(s: Setting, updates: int, key: str = "fid") -> tuple[int, list[float]]:
    """Each seed's quality check nearest to ``updates`` generator updates: (its epoch, the values)."""
    checks = [check_nearest(h, updates / s.updates_per_epoch, key) for h in s.histories]
    return checks[0][0], [v for _, v in checks]


def finals(s: Setting, key: str = "fid") -> list[float]:
    """Each seed's last quality check."""
    return [quality_checks(h, key)[-1][1] for h in s.histories]


def lowest(s: Setting, key: str = "fid") -> tuple[list[float], list[int]]:
    """Each seed's lowest check and the generator updates at which it came."""
    lows = [lowest_check(h, key) for h in s.histories]
    return [v for _, v in lows], [e * s.updates_per_epoch for e, _ in lows]


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    a_values: list[float]
    b_values: list[float]
    verdict: str  # a against b: 'better', 'worse' or 'indistinguishable' (lower FID is better)
    p: float | None


def compare(a: str, av: Sequence[float], b: str, bv: Sequence[float]) -> Comparison:
    return Comparison(a, b, list(av), list(bv), verdict(av, bv, lower_is_better=True), seed_test(av, bv))


def pairs(settings: Sequence[Setting], values: dict[str, list[float]]) -> list[Comparison]:
    """Every pair of settings compared on ``values`` (per seed, by setting name), in the sweep's order."""
    return [compare(a.name, values[a.name], b.name, values[b.name])
            for i, a in enumerate(settings) for b in settings[i + 1:]]


def _differ_in(a: Setting, b: Setting) -> str | None:
    if a.batch_size == b.batch_size and a.beta1 != b.beta1:
        return "beta1"
    if a.beta1 == b.beta1 and a.batch_size != b.batch_size:
        return "batch"
    return None


def factor_effects(settings: Sequence[Setting], values: dict[str, list[float]]) -> dict[str, list[Comparison]]:
    """The comparisons of settings that differ in one factor only: ``{"beta1": [...], "batch": [...]}``."""
    by = {s.name: s for s in settings}
    out: dict[str, list[Comparison]] = {"beta1": [], "batch": []}
    for c in pairs(settings, values):
        f = _differ_in(by[c.a], by[c.b])
        if f is not None:
            out[f].append(c)
    return out


def _p_short(c: Comparison) -> str:
    return "no test" if c.p is None else ("p < 0.001" if c.p < 0.001 else f"p = {c.p:.2g}")


def _effect_text(cs: list[Comparison], what: str) -> str:
    """'β1 matters (β1 = 0.9, batch 64 below β1 = 0.5, batch 64, p < 0.001; ...)', or that it does not."""
    parts = [f"{c.a if c.verdict == 'better' else c.b} below {c.b if c.verdict == 'better' else c.a}, {_p_short(c)}"
             if c.verdict != "indistinguishable" else f"{c.a} and {c.b} not measurably different, {_p_short(c)}" for c in cs]
    found = sum(c.verdict != "indistinguishable" for c in cs)
    head = (f"{what} makes no measurable difference" if not found else f"{what} matters" if found == len(cs)
            else f"{what} matters in {found} of {len(cs)} comparisons")
    return f"{head} ({'; '.join(parts)})"


def _effect_short(cs: list[Comparison], by: dict[str, Setting], factor: str) -> str:
    """'β1 = 0.9 is lower at both batch sizes (at batch 64: 117 ± 11 against 340 ± 30, p < 0.001; ...)',
    'the batch size matters at 1 of the 2 values of β1 (...)', or that it makes no measurable difference:
    each comparison of settings that differ in ``factor`` alone ('beta1' or 'batch'), means and p beside it."""
    what, other = ("β1", "batch sizes") if factor == "beta1" else ("the batch size", "values of β1")

    def level(s: Setting) -> str:
        return f"β1 = {s.beta1}" if factor == "beta1" else f"batch {s.batch_size}"

    def where(s: Setting) -> str:
        return f"batch {s.batch_size}" if factor == "beta1" else f"β1 = {s.beta1}"

    parts, winners = [], set()
    for c in cs:
        a, b = by[c.a], by[c.b]
        if c.verdict == "indistinguishable":
            parts.append(f"at {where(a)}, {values_text(c.a_values, 1)} with {level(a)} against "
                         f"{values_text(c.b_values, 1)} with {level(b)}, {_p_short(c)}: not measurably different")
            continue
        (lo, lo_v), (hi, hi_v) = ((a, c.a_values), (b, c.b_values)) if c.verdict == "better" else \
            ((b, c.b_values), (a, c.a_values))
        winners.add(level(lo))
        parts.append(f"at {where(a)}, {values_text(lo_v, 1)} with {level(lo)} against {values_text(hi_v, 1)} with "
                     f"{level(hi)}, {_p_short(c)}")
    found = sum(c.verdict != "indistinguishable" for c in cs)
    if not found:
        head = f"{what} makes no measurable difference"
    elif found == len(cs) and len(winners) == 1:
        head = f"{winners.pop()} is lower at {'both' if len(cs) == 2 else f'all {len(cs)}'} {other}"
    else:
        head = f"{what} matters at {found} of the {len(cs)} {other}"
    return f"{head} ({'; '.join(parts)})"


def factor_summary(settings: Sequence[Setting], key: str = "fid", lead: str | None = None) -> str:
    """``factor_sentence`` in short, for a findings box: each factor's effect at equal updates with
    its means and Welch's p beside it; ``lead`` replaces its opening "at equal generator updates (N)"
    where the sentence before has just named them."""
    n = common_updates(settings)
    by = {s.name: s for s in settings}
    at = {s.name: at_updates(s, n, key)[1] for s in settings}
    end = {s.name: finals(s, key) for s in settings}
    eq_upd, eq_ep = factor_effects(settings, at), factor_effects(settings, end)
    seeds = len(settings[0].histories)
    text = (f"{lead or f'at equal generator updates ({n:,})'} (Welch's t-test over {seeds} seeds per setting) "
            f"{_effect_short(eq_upd['beta1'], by, 'beta1')} and {_effect_short(eq_upd['batch'], by, 'batch')}")
    length = [c for c, u in zip(eq_ep["batch"], eq_upd["batch"])
              if c.verdict != "indistinguishable" and u.verdict == "indistinguishable"]
    if length:
        epochs = {by[name].histories[0][-1]["epoch"] for c in length for name in (c.a, c.b)}
        text += (". " + " and ".join(f"{c.a} against {c.b}" for c in length) + " differ at equal epochs ("
                 + ", ".join(map(str, sorted(epochs))) + f"; {'; '.join(_p_short(c) for c in length)}) but not "
                 f"measurably at {n:,} updates: up to those updates the difference is one of training length (the "
                 "smaller batch makes more updates an epoch)")
    return text


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def factor_sentence(settings: Sequence[Setting], key: str = "fid") -> str:
    """What the sweep's difference is made of: each factor's effect at equal updates, and where the
    batch size's effect at equal epochs is a difference in training length."""
    n = common_updates(settings)
    at = {s.name: at_updates(s, n, key)[1] for s in settings}
    end = {s.name: finals(s, key) for s in settings}
    eq_upd, eq_ep = factor_effects(settings, at), factor_effects(settings, end)
    seeds = len(settings[0].histories)
    text = (f"At equal generator updates ({n:,}; Welch's t-test over {seeds} seeds per setting), "
            f"{_effect_text(eq_upd['beta1'], 'β1')}, and {_effect_text(eq_upd['batch'], 'the batch size')}.")
    length_only = [c for c, u in zip(eq_ep["batch"], eq_upd["batch"])
                   if c.verdict != "indistinguishable" and u.verdict == "indistinguishable"]
    if length_only:
        text += (" At equal epochs the batch size does differ (" + "; ".join(
            f"{c.a if c.verdict == 'better' else c.b} lower, {_p_short(c)}" for c in length_only)
            + f"), so at {n:,} updates that difference is one of training length: the smaller batch has made more "
            "updates.")
    return text


def pick_sentence(settings: Sequence[Setting], picked: str, key: str = "fid") -> str:
    """The rule's pick (lowest mean final value) against the runner-up, then the same pick at equal updates."""
    end = {s.name: finals(s, key) for s in settings}
    ranked = sorted(settings, key=lambda s: float(np.mean(end[s.name])))
    best = next(s for s in settings if s.name == picked)
    text = f"by the rule fixed in advance (lowest mean final FID) the report uses {picked} ({values_text(end[picked], 1)})"
    others = [s for s in ranked if s.name != picked]
    if others:
        second = others[0]
        v = verdict(end[picked], end[second.name], lower_is_better=True)
        text += (f"; at the end of training it is {'measurably below' if v == 'better' else 'not measurably different from'} "
                 f"the next, {second.name} ({values_text(end[second.name], 1)}; {p_text(end[picked], end[second.name])})")
        n = common_updates(settings)
        at = {s.name: at_updates(s, n, key)[1] for s in settings}
        best_at = min(settings, key=lambda s: float(np.mean(at[s.name])))
        if best_at.name != picked:
            c = compare(best_at.name, at[best_at.name], picked, at[picked])
            text += (f". At equal updates ({n:,}) {best_at.name} has the lowest mean FID ({values_text(at[best_at.name], 1)} "
                     f"against {values_text(at[picked], 1)}; {p_text(c.a_values, c.b_values)}): "
                     + ("measurably below the pick" if c.verdict == "better" else "not measurably different from the pick"))
        else:
            rest = sorted((s for s in settings if s is not best), key=lambda s: float(np.mean(at[s.name])))
            c = compare(best.name, at[best.name], rest[0].name, at[rest[0].name])
            text += (f". At equal updates ({n:,}) the pick also has the lowest mean FID ({values_text(at[picked], 1)}; "
                     f"the next, {rest[0].name}: {values_text(at[rest[0].name], 1)}, {p_text(c.a_values, c.b_values)})")
    return text + "."


@dataclass(frozen=True)
class Trend:
    """Per seed, the slope of a least-squares line through the last third of its quality checks
    (``per`` epochs), with the epochs it spans; over seeds, a one-sample t-test of the slopes
    against zero."""

    slopes: list[float]
    first_epoch: int
    last_epoch: int
    p: float | None
    per: int

    @property
    def direction(self) -> str:
        """'rising', 'falling' or 'flat' (no slope measurably different from zero at ALPHA)."""
        if self.p is None or self.p >= ALPHA:
            return "flat"
        return "rising" if float(np.mean(self.slopes)) > 0 else "falling"

    @property
    def rising(self) -> int:
        return sum(s > 0 for s in self.slopes)

    @property
    def test_text(self) -> str:
        """'n = 3 seeds, 3 up; one-sample t-test of the slopes against 0: p = 0.004'."""
        shown = "n/a" if self.p is None else "< 0.001" if self.p < 0.001 else f"= {self.p:.2g}"
        return (f"n = {len(self.slopes)} seeds, {self.rising} up; one-sample t-test of the slopes against 0: "
                f"p {shown}")


def trend(histories: Sequence[History], key: str = "fid", per: int = 100) -> Trend:
    """The trend of ``key`` over the last third of each seed's checks (at least three checks)."""
    slopes, spans = [], []
    for h in histories:
        checks = quality_checks(h, key)
        if len(checks) < 3:
            raise ValueError(f"a trend needs at least three quality checks of {key!r}, the history has {len(checks)}")
        tail = checks[-max(3, math.ceil(len(checks) / 3)):]
        x = np.array([e for e, _ in tail], dtype=float)
        y = np.array([v for _, v in tail], dtype=float)
        slopes.append(float(np.polyfit(x, y, 1)[0]) * per)
        spans.append((int(x[0]), int(x[-1])))
    s = np.asarray(slopes)
    p = None if len(s) < 2 or s.std() == 0 else float(stats.ttest_1samp(s, 0.0).pvalue)
    return Trend(slopes, min(a for a, _ in spans), max(b for _, b in spans), p, per)


def trend_sentence(name: str, t: Trend, unit: str = "FID", lower_is_better: bool = True) -> str:
    """'Over the last third of its checks (epochs 210–300) the pick is still getting worse: ...'."""
    lo, hi = min(t.slopes), max(t.slopes)
    shown = "< 0.001" if t.p is not None and t.p < 0.001 else ("n/a" if t.p is None else f"= {t.p:.2g}")
    digits = 0 if max(abs(lo), abs(hi)) >= 10 else 2
    signed = lambda v: f"{v:+,.{digits}f}".replace("-", "\u2212")  # noqa: E731 - a minus sign, not a hyphen
    detail = (f"a line fitted per seed rises for {t.rising} of {len(t.slopes)} seeds ({signed(lo)} to {signed(hi)} {unit} "
              f"per {t.per} epochs; one-sample t-test of the slopes against 0: p {shown})")
    worse, better = ("rising", "falling") if lower_is_better else ("falling", "rising")
    verb = {worse: "is still getting worse", better: "is still improving", "flat": "has no measurable trend"}[t.direction]
    return f"Over the last third of its checks (epochs {t.first_epoch}–{t.last_epoch}) {name} {verb}: {detail}."


def last_two_falling(histories: Sequence[History], key: str = "fid") -> int:
    """How many seeds' last check is below their second-to-last (what a naive reading calls 'still
    falling'; kept to show the difference from :func:`trend`)."""
    return sum(1 for h in histories if (c := quality_checks(h, key))[-1][1] < c[-2][1])


# A setting "collapses" where one digit is more than this share of its samples (balanced digits: 0.1).
COLLAPSE_SHARE = 0.5


def _span(values: Sequence[int]) -> str:
    return f"{min(values):,}" if min(values) == max(values) else f"{min(values):,}–{max(values):,}"


def sweep_settings(sweep: Sequence[dict[str, Any]]) -> list[Setting]:
    """The rows of ``evaluate.gan_sweep`` (with their runs) as :class:`Setting` s."""
    from .report import setting_name
    from .steps import updates

    return [Setting(setting_name(r), r["beta1"], r["batch_size"], [x.history for x in r["runs"]],
                    updates(r["runs"][0].cfg) // r["epochs"]) for r in sweep]


def pair_rows(settings: Sequence[Setting]) -> tuple[list[str], list[list[str]]]:
    """Every pair of settings compared twice, Welch over seeds: at the updates every setting reaches
    and at each seed's lowest check (which came after different updates: the table says where)."""
    n = common_updates(settings)
    at = {s.name: at_updates(s, n)[1] for s in settings}
    low = {s.name: lowest(s)[0] for s in settings}
    word = {"better": "lower", "worse": "higher", "indistinguishable": "not measurably different"}
    rows = []
    for c_at, c_low in zip(pairs(settings, at), pairs(settings, low)):
        rows.append([f"{c_at.a} against {c_at.b}",
                     f"{values_text(c_at.a_values, 1)} against {values_text(c_at.b_values, 1)}: {word[c_at.verdict]}, "
                     f"{_p_short(c_at)}",
                     f"{values_text(c_low.a_values, 1)} against {values_text(c_low.b_values, 1)}: "
                     f"{word[c_low.verdict]}, {_p_short(c_low)}"])
    return ["pair (first against second)", f"FID at {n:,} updates", "lowest FID of each seed"], rows


def equal_updates_rows(settings: Sequence[Setting], picked: str) -> tuple[list[str], list[list[str]]]:
    """The equal-updates table: per setting, FID at the updates every setting reaches, at the end,
    at its lowest check (with the updates where it came), and its trend over the last third."""
    n = common_updates(settings)
    header = ["setting", "updates an epoch", f"FID at {n:,} updates (epoch)", "final FID (updates)",
              "lowest FID (updates)", "trend, last third (FID per 100 epochs)"]
    rows = []
    for s in settings:
        epoch, at = at_updates(s, n)
        lows, where = lowest(s)
        try:
            t = trend(s.histories)
            slope = f"{values_text(t.slopes, 0)}: {t.direction} ({t.rising} of {len(t.slopes)} seeds up)"
        except ValueError:  # fewer than three checks (a short profile)
            slope = "too few checks"
        span = _span(where).replace("–", "\u2060–\u2060")  # word joiners: a table cell keeps its range whole
        rows.append([f"**{s.name}** (picked)" if s.name == picked else s.name, f"{s.updates_per_epoch:,}",
                     f"{values_text(at, 1)} ({epoch})", f"{values_text(finals(s), 1)} ({s.updates:,})",
                     f"{values_text(lows, 1)} ({span})",
                     slope])
    return header, rows


def turn_sentence(settings: Sequence[Setting]) -> str:
    """Where each setting's FID turns upward (each seed's lowest check, in generator updates), and
    at each batch size whether the turn comes later with one beta1 than the other (Welch over seeds
    of the updates at the lowest check): evidence on the late rise that the histories hold."""
    where = {s.name: [int(u) for u in lowest(s)[1]] for s in settings}
    spans = [f"{_span(where[s.name])} ({s.name})" for s in settings]
    text = ("Each seed's lowest FID check came after "
            + (", ".join(spans[:-1]) + " and " + spans[-1] if len(spans) > 1 else spans[0]) + " generator updates.")
    found = []  # (batch, the later beta1 or None, p text)
    for batch in sorted({s.batch_size for s in settings}):
        row = sorted((s for s in settings if s.batch_size == batch), key=lambda s: s.beta1)
        if len(row) != 2:
            continue
        a, b = row
        c = compare(a.name, [float(u) for u in where[a.name]], b.name, [float(u) for u in where[b.name]])
        found.append((batch, None if c.verdict == "indistinguishable" else (b if c.verdict == "better" else a).beta1,
                      _p_short(c)))
    test = "Welch's t-test over seeds of the updates at the lowest check"
    later = {b1 for _, b1, _ in found}
    if len(found) > 1 and len(later) == 1:
        b1 = later.pop()
        ps = "; ".join(f"batch {batch}: {p}" for batch, _, p in found)
        text += (f" At {'both batch sizes' if len(found) == 2 else 'every batch size'} " +
                 (f"it comes later with β1 = {b1}" if b1 is not None else "the turn is not measurably earlier with "
                  "either β1") + f" ({ps}; {test}).")
    elif found:
        text += " " + _capital("; ".join(
            f"at batch {batch} " + (f"it comes later with β1 = {b1} ({p})" if b1 is not None else
                                    f"the turn is not measurably earlier with either β1 ({p})")
            for batch, b1, p in found)) + f" ({test})."
    return text


def sweep_findings(sweep: Sequence[dict[str, Any]], picked: str,
                   digits: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the GAN sweep shows, each a sentence computed from its rows (``evaluate.gan_sweep``'s,
    with their runs) and tested over seeds, so a page says it under any profile:

    - ``pick``: the rule's pick against the runner-up at the end, and the best at equal updates;
    - ``factors``: which of beta1 and the batch size matters at equal updates (``factor_sentence``);
    - ``trend``: whether the pick is still improving or getting worse (``trend_sentence``);
    - ``early``: which setting is best at its lowest validation FID, and after how many updates;
    - ``collapse``: the settings whose most frequent digit is over ``COLLAPSE_SHARE`` of their samples,
      each with ``digits[setting]`` (which digit that is, ``collapse.digits_text``) where given.
    """
    digits = digits or {}
    settings = sweep_settings(sweep)
    by = {s.name: s for s in settings}
    low = {s.name: lowest(s) for s in settings}
    early_best = min(settings, key=lambda s: float(np.mean(low[s.name][0])))
    v, where = low[early_best.name]
    runner = sorted((s for s in settings if s is not early_best), key=lambda s: float(np.mean(low[s.name][0])))
    nxt = low[runner[0].name][0] if runner else None
    against = (f"; the next, {runner[0].name}: {values_text(nxt, 1)}, {p_text(v, nxt)}"
               + ("" if verdict(v, nxt, lower_is_better=True) == "better" else ": not measurably lower")
               if runner else "")
    early = (f"At its lowest validation FID (each seed's best check, an optimistic number) {early_best.name} has the "
             f"lowest mean ({values_text(v, 1)}, after {_span(where)} updates{against})"
             + (", the setting the rule picks." if early_best.name == picked else
                ", not the setting the rule picks at the end of training."))
    from .report import cell, setting_name

    collapsed = [r for r in sweep if r["top_class_share"] > COLLAPSE_SHARE]
    collapse = ((f"In {len(collapsed)} setting{'s' * (len(collapsed) > 1)} one digit made up more than {COLLAPSE_SHARE:g} "
                 "of the samples at the end "
                 "(the threshold for a collapse used here; balanced digits: 0.1): "
                 + ", ".join(f"{(n := setting_name(r))} ({cell(r, 'top_class_share', 2)}"
                             + (f"; {digits[n]}" if n in digits else "") + ")" for r in collapsed) + ".")
                if collapsed else f"In no setting did one digit make up more than {COLLAPSE_SHARE:g} of the samples "
                                  "(the threshold for a collapse used here; balanced digits: 0.1).")
    try:
        rise = trend_sentence(f"the pick ({picked})", trend(by[picked].histories))
    except ValueError:  # fewer than three checks (a short profile): no trend to speak of
        rise = f"The pick ({picked}) has too few quality checks for a trend."
    return {"pick": pick_sentence(settings, picked), "factors": factor_sentence(settings) if len(settings) > 1 else "",
            "factors_short": _capital(factor_summary(settings, lead="at those updates" if "At equal updates (" in
                                                     pick_sentence(settings, picked) else None) + ".")
            if len(settings) > 1 else "",
            "trend": rise, "early": early, "collapse": collapse}


def _parted(a: Sequence[History], b: Sequence[History], key: str = "d_loss") -> int | None:
    """The first epoch at which any seed's ``key`` differs between two sets of runs of one setting
    (0 where they never do over the shorter; None where the histories do not record ``key``)."""
    first = None
    for ha, hb in zip(a, b):
        for ra, rb in zip(ha, hb):
            if key not in ra or key not in rb:
                return None
            if ra[key] != rb[key]:
                first = ra["epoch"] if first is None else min(first, ra["epoch"])
                break
    return 0 if first is None else int(first)


def long_sentence(long: Setting, same: Setting, reference: Setting) -> str:
    """What training ``same`` (the sweep's setting) for longer shows: ``long`` (its runs with more
    epochs) against ``reference`` (the setting that made as many updates in the sweep) at equal
    updates, its own trend over its last third, its lowest check, and (its runs being new runs of
    the same seeds) how it compares with ``same`` at the sweep's length."""
    n = min(long.updates, reference.updates)
    epoch, at = at_updates(long, n)
    ref_epoch, ref = at_updates(reference, n)
    c = compare(long.name, at, reference.name, ref)
    lows, where = lowest(long)
    word = {"better": "below", "worse": "above", "indistinguishable": "not measurably different from"}[c.verdict]
    where_at = "ends at" if epoch == long.epochs else f"scores at {n:,} updates (epoch {epoch})"
    text = (f"Trained for {long.epochs} epochs ({long.updates:,} updates), {same.name} {where_at} "
            f"{values_text(at, 1)}, {word} {reference.name} at as many updates ({values_text(ref, 1)}, epoch "
            f"{ref_epoch}; {p_text(at, ref)}). Its lowest check is {values_text(lows, 1)} after {_span(where)} updates"
            + ("." if epoch == long.epochs else f", and at the end it is at {values_text(finals(long), 1)}."))
    # The sweep's equal-updates verdict holds at the sweep's updates only: say where the longer run changes it.
    n0 = min(same.updates, reference.updates)
    before = compare(same.name, at_updates(same, n0)[1], reference.name, at_updates(reference, n0)[1])
    if n > n0 and (before.verdict == "indistinguishable") != (c.verdict == "indistinguishable"):
        was = "not measurably different" if before.verdict == "indistinguishable" else "different"
        text += (f" At {n0:,} updates the two were {was} ({_p_short(before)}); at {n:,} they "
                 + ("are not: " if c.verdict == "indistinguishable" else "are: ")
                 + f"what held at {n0:,} updates does not hold at {'twice' if n == 2 * n0 else f'{n / n0:.2g} times'} as many.")
    try:
        text += " " + trend_sentence("the longer run", trend(long.histories))
    except ValueError:
        pass
    # The longer runs are a group of their own with the sweep's seeds, not the sweep's runs
    # continued: where their losses diverge from the sweep's, at the sweep's length they are a second
    # sample of the same setting.
    again_epoch, again = at_updates(long, same.updates)
    r = compare(long.name, again, same.name, finals(same))
    same_word = {"better": "below", "worse": "above", "indistinguishable": "not measurably different from"}[r.verdict]
    parted = _parted(long.histories, same.histories)
    how = ("" if parted is None else " (their losses repeat the sweep's runs exactly)" if parted == 0 else
           f" (their losses diverge from the sweep's runs' at epoch {parted})")
    text += (f" These are new runs with the same seeds, trained as a group of their own, not the sweep's runs "
             f"continued{how}; at the sweep's length (epoch {again_epoch}) they score {values_text(again, 1)}, "
             f"{same_word} the sweep's {values_text(finals(same), 1)} ({p_text(again, finals(same))}).")
    return text


@dataclass(frozen=True)
class LongRun:
    """The follow-up group that trains a sweep setting for longer (the profile's ``followup``):
    what a page says about it, and its setting beside the sweep's settings of its beta1 where the
    edition holds it (None where it is pending, or where the sweep does not hold that setting)."""

    group: str
    setup: str  # "β1 = 0.9, batch 128, 600 epochs with seeds 0, 1, 2, 3, 4 (the setting the rule picked)"
    text: str
    setting: Setting | None
    beside: dict[str, Setting]
    pending: bool = False  # the sweep holds the setting, the edition not yet the group
    runs: tuple[Any, ...] = ()  # its runs (for the page's provenance), where the edition holds them


def long_run(profile: str, sweep: Sequence[dict[str, Any]], picked: str, seeds: Sequence[int],
             device: str | None = None) -> LongRun:
    """The longer run of the profile's follow-up setting against the sweep (``evaluate.gan_sweep``'s
    rows): ``long_sentence`` where its group is in the edition, else what is missing."""
    from .config import make_config
    from .edition import group_runs, pending_text
    from .report import setting_name

    follow = make_config("followup", profile)
    group = f"gan beta1={follow.long_beta1} batch_size={follow.long_batch_size} epochs={follow.long_epochs}"
    same = next((r for r in sweep if (r["beta1"], r["batch_size"]) == (follow.long_beta1, follow.long_batch_size)), None)
    setup = (f"β1 = {follow.long_beta1}, batch {follow.long_batch_size}, {follow.long_epochs} epochs with seeds "
             f"{', '.join(map(str, seeds))}" + (" (the setting the rule picked)" if same is not None and
                                                setting_name(same) == picked else " (not the setting the rule picked here)"))
    runs = group_runs(profile, group, device) if same is not None else None
    if same is None or runs is None:
        text = (f"Whether {setting_name(same) if same else 'the pick'} also gets worse with more updates "
                f"({follow.long_epochs} epochs) is a follow-up group of runs not in this edition yet."
                if same is not None else "This sweep does not hold the follow-up's setting.")
        return LongRun(group, setup, text, None, {}, pending=same is not None)
    by = {s.name: s for s in sweep_settings(sweep)}
    base = by[setting_name(same)]
    beside = {n: s for n, s in by.items() if s.beta1 == follow.long_beta1}
    reference = max(beside.values(), key=lambda s: s.updates)  # the setting that made as many updates
    long = Setting(f"{base.name}, {follow.long_epochs} epochs", follow.long_beta1, follow.long_batch_size,
                   [r.history for r in runs], base.updates_per_epoch)
    return LongRun(group, setup, long_sentence(long, base, reference), long, beside, runs=tuple(runs))


def label_effect(pairs: Sequence[tuple[str, Sequence[float] | None, Sequence[float] | None]]) -> tuple[list[list[str]], str]:
    """The labels' effect like for like: per setting (name, the GAN's per-seed final validation FIDs,
    the AC-GAN's; None where that group is not in the edition), a table row and one sentence that
    says, setting by setting, what Welch's test over seeds supports."""
    rows, parts = [], []
    for name, gan, acgan in pairs:
        if gan is None or acgan is None:
            rows.append([name, values_text(gan, 1) if gan else "not in this edition", values_text(acgan, 1) if acgan
                         else "not in this edition yet", "", ""])
            parts.append(f"at {name} the {'AC-GAN' if acgan is None else 'GAN'} is not in this edition yet")
            continue
        c = compare("AC-GAN", acgan, "GAN", gan)
        word = {"better": "the labels help", "worse": "the labels hurt", "indistinguishable": "no measurable difference"}
        rows.append([name, values_text(gan, 1), values_text(acgan, 1), word[c.verdict], _p_short(c)])
        parts.append(f"at {name} {word[c.verdict]} (AC-GAN {values_text(acgan, 1)} against GAN {values_text(gan, 1)}, "
                     f"{p_text(acgan, gan)})")
    return rows, "Setting by setting (the same β1 and batch size, validation FID at the last check): " + "; ".join(parts) + "."


def label_answer(pairs: Sequence[tuple[str, Sequence[float] | None, Sequence[float] | None]]) -> str:
    """The short answer to "did the labels help?", from the like-for-like comparisons alone (the
    inputs of :func:`label_effect`): at how many of the settings where both models are in the
    edition the AC-GAN's validation FID is measurably lower (Welch over seeds). It goes before
    :func:`label_effect`'s sentence, which gives each test."""
    done = [(name, compare("AC-GAN", acgan, "GAN", gan)) for name, gan, acgan in pairs if gan and acgan]
    if not done:
        return "Like for like, this edition cannot say yet: no setting has both models."
    helped = [n for n, c in done if c.verdict == "better"]
    hurt = [n for n, c in done if c.verdict == "worse"]
    if len(helped) == len(done):
        head = ("Yes, like for like" + (f" at {'both' if len(done) == 2 else f'all {len(done)}'} settings compared" if len(done) > 1
                                         else f" at {done[0][0]}")
                + ": the AC-GAN's validation FID is lower than the GAN's of the same β1 and batch size")
    elif not helped and not hurt:
        head = "Not measurably, like for like: the AC-GAN's validation FID is not measurably different from the GAN's"
    else:
        head = (f"Like for like, the labels help at {len(helped)} of {len(done)} settings"
                + (f" and hurt at {len(hurt)}" if hurt else ""))
    return f"{head}."


def label_beta1(pairs: Sequence[tuple[str, Sequence[float] | None, Sequence[float] | None]]) -> str:
    """Where two settings of the like-for-like comparison differ in beta1 only, whether each model
    prefers the same one (Welch over seeds): the labels may change which beta1 suits."""
    full = [(n, g, a) for n, g, a in pairs if g and a]
    if len(full) != 2:
        return ""
    (n0, g0, a0), (n1, g1, a1) = full
    parts = []
    for model, v0, v1 in (("AC-GAN", a0, a1), ("GAN", g0, g1)):
        c = compare(n0, v0, n1, v1)
        if c.verdict == "indistinguishable":
            parts.append((None, f"the {model}'s validation FID is not measurably different ({values_text(v0, 1)} at {n0}, "
                                f"{values_text(v1, 1)} at {n1}, {_p_short(c)})"))
        else:
            lo, (vl, vh) = (n0, (v0, v1)) if c.verdict == "better" else (n1, (v1, v0))
            parts.append((lo, f"the {model}'s validation FID is lower at {lo} ({values_text(vl, 1)} against {values_text(vh, 1)}, "
                              f"{_p_short(c)})"))
    (wa, ta), (wg, tg) = parts
    lead = ("The two models prefer different settings: " if wa and wg and wa != wg else
            "Both models prefer the same setting: " if wa and wg else "Across the two settings, ")
    return f"{lead}{ta}, and {tg}."


def other_acgan_runs(profile: str, acgan_runs: Sequence[Any], device: str | None = None) -> list[Any]:
    """The follow-up AC-GAN group of another beta1 that :func:`label_pairs` reads (empty where the
    profile names none or the edition does not hold it yet): for a page's provenance."""
    from . import edition
    from .config import make_config

    b1 = make_config("followup", profile).acgan_beta1
    if b1 is None or b1 == acgan_runs[0].cfg.beta1:
        return []
    return list(edition.group_runs(profile, f"acgan beta1={b1}", device) or [])


def label_pairs(profile: str, sweep: Sequence[dict[str, Any]], acgan_runs: Sequence[Any],
                device: str | None = None) -> list[tuple[str, list[float] | None, list[float] | None]]:
    """The inputs of :func:`label_effect`: the AC-GAN of the chapter (``acgan_runs``) and the
    profile's follow-up AC-GAN of another beta1 (``edition.group_runs``: None while pending), each
    beside the sweep's GAN of the same beta1 and batch size (last validation FID of every seed)."""
    from . import edition
    from .config import make_config

    cfg = acgan_runs[0].cfg
    follow = make_config("followup", profile)
    acgans: dict[float, Sequence[Any] | None] = {cfg.beta1: acgan_runs}
    if follow.acgan_beta1 is not None and follow.acgan_beta1 != cfg.beta1:
        acgans[follow.acgan_beta1] = edition.group_runs(profile, f"acgan beta1={follow.acgan_beta1}", device)
    gans = {r["beta1"]: r["runs"] for r in sweep if r["batch_size"] == cfg.batch_size}

    def last(rs: Sequence[Any] | None) -> list[float] | None:
        return None if rs is None else [quality_checks(r.history)[-1][1] for r in rs]

    return [(f"β1 = {b1}, batch {cfg.batch_size}", last(gans.get(b1)), last(acgans[b1])) for b1 in sorted(acgans)]


def run_histories(profile: str, names: Sequence[str]) -> list[History]:
    """The histories of runs by folder name (as ``evaluate.iwae_table`` lists them), read without
    loading weights (the IWAE parts ship none; import checked every history against its schema)."""
    import json

    from . import schemas
    from .runs import RESULTS_ROOT, results_dir

    root = results_dir(profile, RESULTS_ROOT) / "runs"
    return [json.loads(schemas.inside(root, schemas.check_run_id(n, "run"), "history.json").read_text()) for n in names]


def vae_against_burda(vae: Sequence[History], vae_cfg: Any, burda: Sequence[History], burda_cfg: Any) -> str:
    """Why the report's VAE and Burda et al.'s architecture trained here (k = 1) differ, as far as the
    histories can say: the settings that differ, and the test ELBO at equal updates (Welch over seeds)."""
    from .schedules import BURDA_STAGES
    from .steps import updates

    u_vae, u_b = updates(vae_cfg) // vae_cfg.epochs, updates(burda_cfg) // burda_cfg.epochs
    n = min(updates(vae_cfg), updates(burda_cfg))
    at_vae = [check_nearest(h, n / u_vae, "test_elbo")[1] for h in vae]
    at_b = [check_nearest(h, n / u_b, "test_elbo")[1] for h in burda]
    v = verdict(at_vae, at_b, lower_is_better=False)
    end_vae, end_b = [h[-1]["test_elbo"] for h in vae], [h[-1]["test_elbo"] for h in burda]
    end = verdict(end_vae, end_b, lower_is_better=False)
    final_lr = burda_cfg.lr * 10 ** (-(BURDA_STAGES - 1) / 7)
    differ = (f"The report's VAE (one ReLU layer of {vae_cfg.hidden} a side, d = {vae_cfg.z_dim}, batch {vae_cfg.batch_size}, "
              f"learning rate {vae_cfg.lr:g} throughout, {updates(vae_cfg):,} updates) and Burda et al.'s model trained "
              f"here with k = 1 ({burda_cfg.depth} {burda_cfg.activation} layers of {burda_cfg.hidden} a side, "
              f"d = {burda_cfg.z_dim}, batch {burda_cfg.batch_size}, learning rate {burda_cfg.lr:g} falling to "
              f"{final_lr:.1g}, {updates(burda_cfg):,} updates) differ in architecture, schedule and length.")
    ahead = {"better": "ahead of", "worse": "behind", "indistinguishable": "not measurably different from"}
    text = (f"{differ} At the end the report's VAE is {ahead[end]} the other (test ELBO {values_text(end_vae, 2)} against "
            f"{values_text(end_b, 2)} nats, {p_text(end_vae, end_b)}); at equal updates ({n:,}) it is {ahead[v]} it "
            f"({values_text(at_vae, 2)} against {values_text(at_b, 2)}, {p_text(at_vae, at_b)})")
    if end == "better" and v == "better":
        return text + ": its extra updates do not explain the gap; what else differs does (architecture, latent size, " \
                      "batch or learning-rate schedule: this page does not separate them)."
    if end == "better":
        return text + ": the gap is one of training length."
    return text + "."
