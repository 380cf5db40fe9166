"""The objective chapter's sentences (``mnistgen.objective``) fed crafted histories: a loss that is
slower but deeper is told apart from one that is only earlier, two generators that draw no variety
of digits are not called better or worse, and a collapse counts its seeds."""

import numpy as np

from mnistgen import objective
from mnistgen.objective import LossRuns


def runs(saturating, k, fid_curve, is_value=7.0, share=0.2, seeds=5, epochs=100, every=10, noise=2.0):
    hs = []
    for s in range(seeds):
        rng = np.random.default_rng(100 * k + 10 * saturating + s)
        hs.append([{"epoch": e, **({"fid": fid_curve(e) + noise * rng.standard_normal(),
                                    "inception_score": is_value + 0.05 * rng.standard_normal(),
                                    "top_class_share": share + 0.01 * rng.standard_normal()}
                                   if e % every == 0 else {})} for e in range(1, epochs + 1)])
    return LossRuns(saturating, k, hs)


def u_curve(best_epoch, best):
    return lambda e: best + 0.05 * (e - best_epoch) ** 2


def test_a_slower_but_deeper_loss_is_better_at_its_lowest_check_too():
    """The saturating loss bottoms out later (epoch 90) and lower (90) than the non-saturating one
    (epoch 50, 150): better at the last check and at the lowest; an earlier-only loss is not."""
    sat, ns = runs(True, 1, u_curve(90, 90)), runs(False, 1, u_curve(50, 150))
    text = objective.regime_sentence(sat, ns)
    assert text.startswith("with k = 1 the saturating loss's samples are better than the non-saturating one's by FID "
                           "at the last check")
    assert "and also at each seed's lowest check (" in text and "at epoch 50, Welch's" in text
    # the same depth, only later: better at the last check (the other is rising again), not at the lowest
    later = runs(True, 1, u_curve(90, 150))
    text = objective.regime_sentence(later, ns)
    assert "are better than the non-saturating one's by FID at the last check" in text
    assert "and not measurably different at each seed's lowest check" in text


def test_two_generators_without_variety_rank_two_failures():
    frozen = runs(True, 5, lambda e: 1680.0, is_value=1.0, share=0.5, noise=0.5)
    collapsed = runs(False, 5, lambda e: 1500.0, is_value=1.07, share=0.99)
    text = objective.regime_sentence(frozen, collapsed)
    assert text.startswith("with k = 5 neither loss's generator draws a variety of digits (Inception Score 1.0")
    assert "under 2, the threshold used here): their FIDs" in text and "differ, but as a ranking of two failures" in text
    assert "better" not in text and "worse" not in text


def test_a_collapse_counts_the_seeds_over_the_threshold():
    half = runs(True, 5, lambda e: 1680.0, share=0.5, noise=0.5)  # seeds either side of 0.5
    shares = [h[-1]["top_class_share"] for h in half.histories]
    n_over = sum(s > objective.COLLAPSE_SHARE for s in shares)
    assert 0 < n_over < 5
    named = LossRuns(True, 5, half.histories, digits="the digit 1 in 5 of 5 seeds")
    text = objective.collapse_sentence([runs(False, 1, u_curve(50, 150)), named])
    assert f"in {n_over} of 5 seeds of saturating, k = 5 (" in text and "; the digit 1 in 5 of 5 seeds)" in text
    assert "non-saturating, k = 1" not in text  # no seed over
    assert objective.collapse_sentence([runs(False, 1, u_curve(50, 150))]).endswith(
        "in no seed of any setting that draws digits.")
    grey = LossRuns(True, 5, half.histories, digits="noise rather than digits in seed 0: the yardstick's mean "
                    "confidence in its label is 0.24, under 0.5", noise=True)
    text = objective.collapse_sentence([grey])
    assert "in no seed of any setting that draws digits. Saturating, k = 5 draws noise rather than digits in seed 0" in text
    assert text.endswith(") is no collapse.")


def test_the_ending_follows_the_papers_regime():
    settings = {(1, True): runs(True, 1, u_curve(90, 90)), (1, False): runs(False, 1, u_curve(50, 150)),
                (5, True): runs(True, 5, lambda e: 1680.0, is_value=1.0), (5, False): runs(False, 5, lambda e: 1500.0, is_value=1.0)}
    found = objective.long_findings(settings, 100, 0.5, 128)
    assert found.ending.startswith("The rest of this report keeps the paper's non-saturating loss, to reproduce the "
                                   "paper, although in the paper's regime (k = 1) the saturating loss drew the better")
    assert [r[0].replace("\xa0", " ") for r in found.rows] == ["non-saturating, k = 1", "saturating, k = 1", "non-saturating, k = 5",
                                          "saturating, k = 5"]
    assert found.short.startswith("Trained for 100 epochs (β1 = 0.5, batch 128: the profile's default GAN settings, "
                                  "which the sweep's pick need not share, as in the short runs of the objective chapter), "
                                  "with k = 1 the saturating loss's samples are better")
    assert found.short.endswith(found.ending) and "collapse threshold" not in found.short
    swapped = {**settings, (1, True): settings[1, False], (1, False): settings[1, True]}
    swapped = {key: LossRuns(key[1], key[0], r.histories) for key, r in swapped.items()}
    assert "it also drew the better samples here" in objective.long_findings(swapped, 100, 0.5, 128).ending


def test_the_ending_does_not_rank_two_failures():
    flat = {(1, True): runs(True, 1, lambda e: 30.0, is_value=1.0), (1, False): runs(False, 1, lambda e: 40.0, is_value=1.0),
            (5, True): runs(True, 5, lambda e: 30.0, is_value=1.0), (5, False): runs(False, 5, lambda e: 40.0, is_value=1.0)}
    ending = objective.long_findings(flat, 3, 0.5, 128).ending
    assert "neither loss's generator drew a variety of digits after 3 epochs" in ending and "better" not in ending
