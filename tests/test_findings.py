"""The sweep's comparison sentences (``mnistgen.findings``) fed crafted histories where a naive
reading and the tested one disagree: equal epochs against equal updates, the last two checks
against the trend."""

import numpy as np
import pytest

from mnistgen import findings


def fid_at(updates: float) -> float:
    """A U-shaped quality curve of generator updates: best (100) at 1,000 updates."""
    return 100 + 0.0002 * (updates - 1000) ** 2


def history(epochs: int, updates_per_epoch: int, seed: int, every: int = 1, noise: float = 3.0,
            curve=fid_at) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"epoch": e, **({"fid": curve(e * updates_per_epoch) + noise * rng.standard_normal()}
                            if e % every == 0 or e == epochs else {})} for e in range(1, epochs + 1)]


def setting(beta1: float, batch: int, epochs: int = 20, seeds: int = 5, curve=fid_at) -> findings.Setting:
    per_epoch = 100 * 128 // batch  # batch 64: twice the updates of batch 128 in an epoch
    return findings.Setting(f"β1 = {beta1}, batch {batch}", beta1, batch,
                            [history(epochs, per_epoch, 10 * batch + s, curve=curve) for s in range(seeds)], per_epoch)


def test_equal_updates_find_a_tie_where_equal_epochs_find_a_batch_size_effect():
    """Both batch sizes follow one curve of updates: batch 64 is past its best at the end (twice the
    updates), so at equal epochs batch 128 wins, at equal updates they tie, and the sentences say so."""
    s64, s128 = setting(0.9, 64), setting(0.9, 128)
    assert findings.common_updates([s64, s128]) == s128.updates == 2000
    epoch, at64 = findings.at_updates(s64, 2000)
    assert epoch == 10  # batch 64 reaches 2,000 updates at epoch 10
    end = findings.compare(s128.name, findings.finals(s128), s64.name, findings.finals(s64))
    same = findings.compare(s128.name, findings.at_updates(s128, 2000)[1], s64.name, at64)
    assert end.verdict == "better" and same.verdict == "indistinguishable"
    text = findings.factor_sentence([s64, s128])
    assert "the batch size makes no measurable difference" in text
    assert "one of training length" in text
    # the findings box's short form: each comparison with its means and Welch's p, scoped to its updates
    short = findings.factor_summary([s64, s128])
    at64, at128 = findings.at_updates(s64, 2000)[1], findings.at_updates(s128, 2000)[1]
    from mnistgen.report import values_text

    c = findings.compare(s64.name, at64, s128.name, at128)
    assert (f"the batch size makes no measurable difference (at β1 = 0.9, {values_text(at64, 1)} with batch 64 against "
            f"{values_text(at128, 1)} with batch 128, p = {c.p:.2g}: not measurably different)") in short
    assert "differ at equal epochs (20; p < 0.001) but not measurably at 2,000 updates: up to those updates" in short
    header, rows = findings.pair_rows([s64, s128])
    assert header[1] == "FID at 2,000 updates" and len(rows) == 1 and rows[0][0] == f"{s64.name} against {s128.name}"
    assert rows[0][1].startswith(f"{values_text(at64, 1)} against {values_text(at128, 1)}: not measurably different, p = ")
    pick = findings.pick_sentence([s64, s128], s128.name)
    assert "measurably below the next" in pick


def test_equal_updates_keep_a_real_difference():
    """A beta1 that shifts the whole curve up by 50 is found at equal updates as well: no 'tie'."""
    worse = setting(0.5, 128, curve=lambda u: fid_at(u) + 50)
    better = setting(0.9, 128)
    text = findings.factor_sentence([worse, better])
    assert text.startswith("At equal generator updates (2,000") and "β1 matters (β1 = 0.9, batch 128 below β1 = 0.5" in text
    assert "training length" not in text


def test_the_trend_rises_while_the_last_two_checks_fall():
    """Quality getting worse over the last third, though every seed's last check dips below the one before."""
    hs = []
    for s in range(5):
        rng = np.random.default_rng(s)
        fids = list(100 + 2.0 * np.arange(30) + rng.normal(0, 0.5, 30))
        fids[-1] = fids[-2] - 5  # the last check falls
        hs.append([{"epoch": 10 * (i + 1), "fid": f} for i, f in enumerate(fids)])
    assert findings.last_two_falling(hs) == 5
    t = findings.trend(hs)
    assert t.direction == "rising" and t.rising == 5 and (t.first_epoch, t.last_epoch) == (210, 300)
    assert all(0 < s < 20 for s in t.slopes)  # +2 FID a check of 10 epochs, less the dip: under +20 per 100
    text = findings.trend_sentence("the pick", t)
    assert "the pick is still getting worse" in text and "rises for 5 of 5 seeds" in text
    assert t.test_text.startswith("n = 5 seeds, 5 up; one-sample t-test of the slopes against 0: p ")


def test_the_trend_is_the_least_squares_slope_and_noise_alone_is_flat():
    line = [[{"epoch": e, "fid": 300 - 0.5 * e + (s if e % 20 == 10 else -s)} for e in range(10, 301, 10)] for s in range(1, 4)]
    t = findings.trend(line)
    x = np.arange(210, 301, 10, dtype=float)
    for s, slope in zip(range(1, 4), t.slopes):
        y = 300 - 0.5 * x + np.where(x % 20 == 10, s, -s)
        assert slope == pytest.approx(np.polyfit(x, y, 1)[0] * 100, rel=1e-9)
    assert t.direction == "falling" and "is still improving" in findings.trend_sentence("x", t)
    rng = np.random.default_rng(0)
    noise = [[{"epoch": e, "fid": 100 + rng.normal()} for e in range(10, 301, 10)] for _ in range(5)]
    flat = findings.trend(noise)
    assert flat.p is not None and flat.p >= 0.05 and flat.direction == "flat"


def test_a_trend_needs_three_checks():
    with pytest.raises(ValueError, match="at least three quality checks"):
        findings.trend([[{"epoch": 1, "fid": 1.0}, {"epoch": 2, "fid": 2.0}]])


def _sweep_row(beta1: float, batch: int, fids_by_seed: list[dict[int, float]], top_share: float, epochs: int = 40) -> dict:
    """A row as evaluate.gan_sweep returns it: runs with configurations and histories, mean ± sd of the last checks."""
    from types import SimpleNamespace

    from mnistgen.config import make_config

    cfg = make_config("gan", "smoke", batch_size=batch, epochs=epochs)
    runs = [SimpleNamespace(cfg=cfg, history=[{"epoch": e, **({"fid": f[e]} if e in f else {})} for e in range(1, epochs + 1)])
            for f in fids_by_seed]
    finals = [f[epochs] for f in fids_by_seed]
    return {"beta1": beta1, "batch_size": batch, "epochs": epochs, "runs": runs, "fid": float(np.mean(finals)),
            "fid_sd": float(np.std(finals, ddof=1)), "top_class_share": top_share, "top_class_share_sd": 0.01}


def test_the_sweep_findings_are_computed_from_the_histories():
    """beta1 0.5: best early (~60 at epoch 10), worse by the end (~300); 0.9: flat at ~150, lowest at the end.
    (smoke's GAN trains on 1,024 images: 8 updates an epoch at batch 128.)"""
    late = _sweep_row(0.5, 128, [{10: 60 + s, 20: 100 + s, 30: 200 + s, 40: 300 + 3 * s} for s in range(4)], top_share=0.6)
    flat = _sweep_row(0.9, 128, [{10: 160 + s, 20: 150 - s, 30: 152 + s, 40: 149 + s} for s in range(4)], top_share=0.2)
    found = findings.sweep_findings([late, flat], "β1 = 0.9, batch 128")
    assert found["pick"].startswith("by the rule fixed in advance (lowest mean final FID) the report uses β1 = 0.9, "
                                    "batch 128 (150.5 ± 1.3); at the end of training it is measurably below the next")
    assert "At equal updates (320) the pick also has the lowest mean FID" in found["pick"]
    assert found["factors"].startswith("At equal generator updates (320; Welch's t-test over 4 seeds per setting), β1 matters")
    assert found["early"].startswith("At its lowest validation FID (each seed's best check, an optimistic number) "
                                     "β1 = 0.5, batch 128 has the lowest mean (61.5 ± 1.3, after 80 updates; the next, "
                                     "β1 = 0.9, batch 128: 148.2 ± 1.0, Welch's t-test over seeds: p < 0.001, n = 4 and 4), "
                                     "not the setting")
    from mnistgen import report

    assert report.lowest_text(flat, short=True) == "148.2 ± 1.0 (20–40)"
    assert report.lowest_text(late) == "61.5 ± 1.3 at epoch 10"
    assert found["collapse"].startswith("In 1 setting one digit made up more than 0.5 of the samples")
    assert found["collapse"].endswith("β1 = 0.5, batch 128 (0.60 ± 0.01).")
    named = findings.sweep_findings([late, flat], "β1 = 0.9, batch 128",
                                    {"β1 = 0.5, batch 128": "the digit 1 in 4 of 4 seeds", "β1 = 0.9, batch 128": "x"})
    assert named["collapse"].endswith("β1 = 0.5, batch 128 (0.60 ± 0.01; the digit 1 in 4 of 4 seeds).")
    assert "x)" not in named["collapse"]  # a setting under the threshold is not named
    calm = findings.sweep_findings([flat], "β1 = 0.9, batch 128")
    assert calm["collapse"].startswith("In no setting did one digit")
    assert calm["trend"].startswith("Over the last third of its checks (epochs 20–40) the pick (β1 = 0.9, batch 128) "
                                    "has no measurable trend")


def test_the_longer_run_is_compared_at_equal_updates_and_as_a_second_sample_at_the_sweeps_length():
    """The pick trained twice as long on the U-shaped curve: past its best it is above batch 64 at
    the same updates only if it is worse there; at the sweep's length its new seeds are a second
    sample of the same setting, and the sentence says whether the two samples agree."""
    s128, s64 = setting(0.9, 128), setting(0.9, 64)
    long = findings.Setting(s128.name, 0.9, 128, [history(40, 100, 500 + s) for s in range(5)], 100)
    text = findings.long_sentence(long, s128, s64)
    assert text.startswith("Trained for 40 epochs (4,000 updates), β1 = 0.9, batch 128 ends at")
    assert text.count("4,000") == 1  # the end is not said twice
    assert "not measurably different from β1 = 0.9, batch 64 at as many updates" in text  # one curve of updates
    assert "is still getting worse" in text
    assert "not the sweep's runs continued; at the sweep's length (epoch 20) they score" in text  # no losses recorded
    assert text.rstrip(".").split("they score ")[1].split(",")[1].startswith(" not measurably different from the sweep's")
    # new runs that drifted: 40 FID above the sweep's at its length
    drifted = findings.Setting(s128.name, 0.9, 128, [history(40, 100, 500 + s, curve=lambda u: fid_at(u) + 40)
                                                     for s in range(5)], 100)
    assert "above the sweep's" in findings.long_sentence(drifted, s128, s64)
    assert "does not hold" not in text  # the tie at 2,000 updates holds at 4,000 on one curve


def test_the_longer_run_says_where_the_equal_updates_tie_breaks():
    """Batch 128 trained longer leaves batch 64's curve after the sweep's 2,000 updates (it gets worse
    faster): the tie at the sweep's updates does not hold at twice as many, and the sentence says so."""
    s128, s64 = setting(0.9, 128), setting(0.9, 64)
    steeper = lambda u: fid_at(u) + (0 if u <= 2000 else 0.1 * (u - 2000))  # noqa: E731
    long = findings.Setting(s128.name, 0.9, 128, [history(40, 100, 500 + s, curve=steeper) for s in range(5)], 100)
    text = findings.long_sentence(long, s128, s64)
    assert "above β1 = 0.9, batch 64 at as many updates" in text
    assert ("At 2,000 updates the two were not measurably different (p = ") in text
    assert "at 4,000 they are: what held at 2,000 updates does not hold at twice as many." in text


def test_the_longer_run_says_where_its_losses_part_from_the_sweeps():
    hs = [[{"epoch": e, "d_loss": 1.0 / e, "fid": fid_at(100 * e)} for e in range(1, 41)] for _ in range(3)]
    same = findings.Setting("β1 = 0.9, batch 128", 0.9, 128, [h[:20] for h in hs], 100)
    moved = [[{**r, "d_loss": r["d_loss"] + (1e-4 if r["epoch"] >= 3 and i == 1 else 0)} for r in h] for i, h in enumerate(hs)]
    long = findings.Setting(same.name, 0.9, 128, moved, 100)
    assert "(their losses diverge from the sweep's runs' at epoch 3)" in findings.long_sentence(long, same, same)
    assert "(their losses repeat the sweep's runs exactly)" in findings.long_sentence(
        findings.Setting(same.name, 0.9, 128, hs, 100), same, same)


def test_the_labels_answer_rests_on_the_like_for_like_tests():
    """The AC-GAN far below the GAN at beta1 0.5, level with it at 0.9: the answer says 1 of 2, each
    setting's sentence its own verdict, and the two models prefer different beta1."""
    gan5, acgan5 = [500.0, 510, 520, 530, 505], [16.0, 17, 15, 18, 16]
    gan9, acgan9 = [130.0, 120, 140, 110, 150], [131.0, 119, 142, 112, 149]
    pairs = [("β1 = 0.5, batch 128", gan5, acgan5), ("β1 = 0.9, batch 128", gan9, acgan9)]
    rows, like = findings.label_effect(pairs)
    assert [r[3] for r in rows] == ["the labels help", "no measurable difference"]
    assert like.startswith("Setting by setting (the same β1 and batch size, validation FID at the last check): at β1 = 0.5, "
                           "batch 128 the labels help (AC-GAN 16.4 ± 1.1 against GAN 513 ± 12")
    answer = findings.label_answer(pairs)
    assert answer == "Like for like, the labels help at 1 of 2 settings."
    assert findings.label_beta1(pairs).startswith(
        "The two models prefer different settings: the AC-GAN's validation FID is lower at β1 = 0.5, batch 128 "
        "(16.4 ± 1.1 against 131 ± 15, p < 0.001), and the GAN's validation FID is lower at β1 = 0.9, batch 128")
    both = [pairs[0], ("β1 = 0.9, batch 128", gan9, [27.0, 25, 30, 26, 28])]
    assert findings.label_answer(both).startswith("Yes, like for like at both settings compared")
    pending = [pairs[0], ("β1 = 0.9, batch 128", gan9, None)]
    assert findings.label_answer(pending).startswith("Yes, like for like at β1 = 0.5, batch 128:")
    assert findings.label_beta1(pending) == ""
    assert "not in this edition yet" in findings.label_effect(pending)[1]


def test_the_turn_is_later_where_the_curve_bottoms_out_later():
    """beta1 0.9's curve bottoms out at 1,600 updates, beta1 0.5's at 1,000 (fid_at), at each batch size."""
    later = lambda u: 100 + 0.0002 * (u - 1600) ** 2  # noqa: E731
    settings = [setting(0.5, 64), setting(0.5, 128), setting(0.9, 64, curve=later), setting(0.9, 128, curve=later)]
    text = findings.turn_sentence(settings)
    assert text.startswith("Each seed's lowest FID check came after ")
    assert "(β1 = 0.9, batch 128) generator updates." in text
    assert "At both batch sizes it comes later with β1 = 0.9 (batch 64: p < 0.001; batch 128: p < 0.001; Welch's" in text
    same = findings.turn_sentence([setting(0.5, 128), setting(0.9, 128)])
    assert "at batch 128 the turn is not measurably earlier with either β1" in same.lower()
    mixed = findings.turn_sentence([setting(0.5, 64), setting(0.5, 128), setting(0.9, 64, curve=later), setting(0.9, 128)])
    assert "At batch 64 it comes later with β1 = 0.9 (p < 0.001); at batch 128 the turn is not measurably" in mixed


def test_the_beta1_sentence_reads_where_neither_model_prefers_one():
    a, b = [30.0, 31, 32, 33, 34], [31.0, 30, 33, 32, 35]
    text = findings.label_beta1([("β1 = 0.5, batch 128", a, b), ("β1 = 0.9, batch 128", b, a)])
    assert text.startswith("Across the two settings, the AC-GAN's validation FID is not measurably different (")
    assert "between" not in text
