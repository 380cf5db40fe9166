"""What the notebooks need to turn runs into a page: provenance, glued numbers and figures, tables.

Numbers are glued rounded to the precision the page shows, so the executed notebook (and its
nbval reference copy) holds exactly what the reader sees.
"""

from __future__ import annotations

import html
import json
import math
import re
import shlex
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .runs import REPO_DIR, RESULTS_ROOT, Run, code_version, git_commit, installed_bundle

PUBLISHED = REPO_DIR / "book" / "published.yml"


# Strings read from a run's manifest or history, a results bundle's bundle.json, an edition's
# part.json/parts.json or a cached metrics file come from whoever made the archive, and pages render
# raw HTML and MyST roles: every such string goes into a page's Markdown through one of these two.
_MD_SPECIALS = frozenset("\\`*_{}[]|$")  # escapes, code spans and roles, emphasis, links, table cells, math


def _one_line(s: Any) -> str:
    """``str(s)`` with every control, format and line/paragraph separator character (newlines,
    tabs, NUL, bidi overrides) a space: pasted text cannot start a new block or paragraph."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in str(s))


def md_text(s: Any) -> str:
    """``s`` as literal running text of a Markdown (MyST) page, wherever it is pasted in a line or a
    table cell: on one line, HTML escaped (``<``, ``>``, ``&``: no tag, no entity, no autolink) and
    the inline syntax (code spans and roles, emphasis, links, table cells, math) backslash-escaped.
    An underscore between two letters or digits (``x86_64``, ``batch_size``) can delimit nothing
    and is left as it is."""
    t = _one_line(s)
    out = []
    for i, c in enumerate(t):
        if c in _MD_SPECIALS and not (c == "_" and 0 < i < len(t) - 1 and t[i - 1].isalnum() and t[i + 1].isalnum()):
            out.append("\\")
        out.append(c)
    return html.escape("".join(out), quote=False)


def md_code(s: Any, table: bool = False) -> str:
    """``s`` as an inline code span (shown verbatim, HTML and roles inert inside it): on one line,
    fenced by a backtick run longer than any inside it (padded with a space where ``s`` starts or
    ends with a backtick). ``table``: for a table cell, where a pipe would end the cell even in code."""
    t = _one_line(s)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", t)), default=0) + 1)
    pad = " " if t[:1] == "`" or t[-1:] == "`" or (t[:1] == " " and t[-1:] == " " and t.strip()) else ""
    if table:
        t = t.replace("|", "\\|")
    return f"{fence}{pad}{t}{pad}{fence}"


def _glue(name: str, value: Any, display: bool = False) -> None:
    try:
        from myst_nb import glue
    except ImportError:  # outside the book toolchain (plain python): nothing to glue into
        return
    glue(name, value, display=display)


def glue_number(name: str, value: float, digits: int = 2) -> float:
    v = round(float(value), digits)
    _glue(name, v)
    return v


def mean_sd_text(mean: float, sd: float | None, digits: int = 2, scale: float = 1.0) -> str:
    """'206 ± 12': the sd to its first significant digit (two where that digit is 1: 0.012 shown
    as 0.01 would lose a sixth of itself) and the mean to the same place, never finer than
    ``digits`` decimals; thousands separated. An sd that rounds to zero there reads
    '0.65 (sd < 0.01)', not '± 0.00'; an sd of exactly 0, '± 0'. One seed (sd None): the mean to
    ``digits`` decimals."""
    m = scale * mean
    if sd is None:
        return f"{m:,.{digits}f}"
    s = abs(scale * sd)
    if s == 0:
        return f"{m:,.{digits}f} ± 0"
    exp = math.floor(math.log10(s))
    lead = int(s / 10 ** exp + 1e-9)
    places = min(digits, (1 if lead == 1 else 0) - exp)  # decimals; negative: tens, hundreds, ...
    if round(s, places) == 0:
        return f"{m:,.{digits}f} (sd < {10.0 ** -digits:g})"

    def fmt(x: float) -> str:
        return f"{round(x, places):,.{max(places, 0)}f}"

    return f"{fmt(m)} ± {fmt(s)}"


def cell(d: dict[str, Any], key: str, digits: int = 2, scale: float = 1.0) -> str:
    """A table cell for ``d[key]`` with its ``d[key + '_sd']``; empty where the metric is absent."""
    if d.get(key) is None:
        return ""
    return mean_sd_text(d[key], d.get(f"{key}_sd"), digits, scale)


def values_text(values: Sequence[float], digits: int = 2, scale: float = 1.0) -> str:
    """'mean ± sd' of per-seed values (sample sd; one value: the value), as ``mean_sd_text`` prints it."""
    import numpy as np

    v = np.asarray(values, dtype=float) * scale
    return mean_sd_text(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else None, digits)


def glue_mean_sd(name: str, values: Sequence[float], digits: int = 2, scale: float = 1.0) -> str:
    """Glue 'mean ± sd' over seeds (sample sd) for prose; returns the text."""
    return glue_text(name, values_text(values, digits, scale))


def quality_checks(history: Sequence[dict[str, Any]], key: str = "fid") -> list[tuple[int, float]]:
    """``(epoch, value)`` of every epoch of a run's history that holds a quality check of ``key``."""
    return [(int(h["epoch"]), float(h[key])) for h in history if h.get(key) is not None]


def lowest_check(history: Sequence[dict[str, Any]], key: str = "fid") -> tuple[int, float]:
    """The quality check with the lowest ``key`` (the earliest of equal ones): ``(epoch, value)``.

    The minimum of many noisy checks is an optimistic number: it says when a run was at its best,
    not what a rule that stopped there would have scored on fresh data."""
    checks = quality_checks(history, key)
    if not checks:
        raise ValueError(f"the history has no quality check of {key!r}")
    return min(checks, key=lambda c: (c[1], c[0]))


def check_nearest(history: Sequence[dict[str, Any]], epoch: float, key: str = "fid") -> tuple[int, float]:
    """The quality check nearest to ``epoch`` (the earlier of two as near): ``(epoch, value)``."""
    checks = quality_checks(history, key)
    if not checks:
        raise ValueError(f"the history has no quality check of {key!r}")
    return min(checks, key=lambda c: (abs(c[0] - epoch), c[0]))


ALPHA = 0.05  # the level at which a difference over seeds is called a difference


def seed_test(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Welch's two-sided t-test of the means of two sets of per-seed values: the p-value, or None
    where it cannot be computed (fewer than two seeds on a side, or no spread on either)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return None
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def verdict(a: Sequence[float], b: Sequence[float], lower_is_better: bool) -> str:
    """'better', 'worse' or 'indistinguishable': a's per-seed values against b's, by ``seed_test``
    at ``ALPHA`` ('indistinguishable' also where no test is possible)."""
    import numpy as np

    p = seed_test(a, b)
    if p is None or p >= ALPHA:
        return "indistinguishable"
    a_lower = float(np.mean(a)) < float(np.mean(b))
    return "better" if a_lower == lower_is_better else "worse"


def p_text(a: Sequence[float], b: Sequence[float]) -> str:
    """'Welch's t-test over seeds: p = 0.003, n = 3 and 3', or why there is no test."""
    p = seed_test(a, b)
    if p is None:
        return f"no test: n = {len(a)} and {len(b)} seeds"
    shown = "< 0.001" if p < 0.001 else f"= {p:.2g}"
    return f"Welch's t-test over seeds: p {shown}, n = {len(a)} and {len(b)}"


def digit_counts(digits: Sequence[int]) -> str:
    """Each seed's most frequent digit, said once: '9' where all agree, else '9 in 3 seeds, 7 in 2'."""
    from collections import Counter

    ranked = sorted(Counter(digits).items(), key=lambda dc: (-dc[1], dc[0]))
    if len(ranked) == 1:
        return str(ranked[0][0])
    return ", ".join(f"{d} in {c} seed{'s' * (c > 1)}" for d, c in ranked)


def setting_name(row: dict[str, Any]) -> str:
    """A GAN sweep row's setting as the pages name it: 'β1 = 0.5, batch 64'."""
    return f"β1 = {row['beta1']}, batch {row['batch_size']}"


def lowest_text(row: dict[str, Any], short: bool = False) -> str:
    """'159 ± 9 at epochs 30–40' ('159 ± 9 (30–40)' if ``short``, for a table column): a sweep
    row's lowest FID per seed (``lowest_check``), mean ± sd, and the epochs the seeds reached it at."""
    lows = [lowest_check(r.history) for r in row["runs"]]
    first, last = min(e for e, _ in lows), max(e for e, _ in lows)
    span = str(first) if first == last else f"{first}–{last}"
    value = values_text([v for _, v in lows], 1)
    return f"{value} ({span})" if short else f"{value} at epoch{'s' * (first != last)} {span}"


def glue_text(name: str, value: str) -> str:
    _glue(name, value)
    return value


def glue_markdown(name: str, text: str) -> str:
    """Glue Markdown for ``{glue:md}`` (with ``:format: myst`` it may hold directives and labels)."""
    from IPython.display import Markdown

    _glue(name, Markdown(text))
    return text


def glue_figure(name: str, fig: plt.Figure, profile: str) -> None:
    """Save ``fig`` as ``results/<profile>/figures/<name>.png`` and glue it for ``{glue:figure}``.
    A log axis a reader cannot read values off (``plots.unreadable_log_axes``) stops the chapter."""
    from .plots import unreadable_log_axes

    if problems := unreadable_log_axes(fig):
        plt.close(fig)
        raise ValueError(f"figure {name}: " + "; ".join(problems) + " (draw it with plots.log_axis)")
    path = RESULTS_ROOT / profile / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    _glue(name, fig)
    plt.close(fig)


def _unbroken(cell: Any) -> str:
    """A table cell whose numbers do not wrap: '115 ± 20' over three lines of a narrow column reads
    as three numbers, so the spaces around ± (and inside 'sd < x') are no-break spaces. An empty
    cell (a value the row does not have) shows a dash."""
    text = str(cell).replace(" ± ", "\u00a0±\u00a0").replace("(sd < ", "(sd\u00a0<\u00a0")
    return text if text.strip() else "—"  # an empty cell reads as a value left out, not a missing one


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_unbroken(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table_block(name: str, caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A numbered, captioned MyST table (``{numref}`name``` refers to it), for ``glue_markdown``.

    A backtick fence's info string may hold no backtick (CommonMark): a caption that quotes code
    would end the directive there and show the fence as text, so such a table is fenced by tildes."""
    fence = "~~~" if "`" in caption else "```"
    return f"{fence}{{table}} {caption}\n:name: {name}\n\n" + markdown_table(header, rows) + f"\n{fence}"


def rerun_command(notebook: str, profile: str, params: dict[str, Any]) -> str:
    args = " ".join(f"-p {k} {shlex.quote(json.dumps(v) if not isinstance(v, str) else v)}"
                    for k, v in params.items() if v is not None)
    return f"make run NOTEBOOK={notebook} PROFILE={profile}" + (f' PARAMS="{args}"' if args else "")


def provenance(notebook: str, profile: str, params: dict[str, Any], runs: Sequence[Run]) -> str:
    """A Markdown block: how this page was produced and the command that reproduces it.

    A paragraph says the profile, the commits and the device once; behind a click, one table row
    per configuration (named by the settings that tell it from the page's other configurations of
    its model, e.g. β1 and batch size in the sweep), its seeds, epochs and the wall time of its
    batch, then the run ids. Device and commit get a column only where the runs differ in them.

    The device and the code commit a run was trained on are what its manifest states (a run from a
    results bundle or part: whoever made the archive), so the page says them as such; every string
    read from a manifest or a bundle goes in through ``md_text`` or ``md_code``.
    """
    def device(r: Run) -> str:
        return f"{md_text(r.manifest['device'])} ({md_text(r.manifest['device_name'])})"

    shared = {"device": {device(r) for r in runs}, "code commit": {str(r.manifest["git_commit"]) for r in runs}}
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        config = {k: v for k, v in r.manifest["config"].items() if k not in ("seed", "device")}
        groups.setdefault((str(r.manifest["model"]), json.dumps(config, sort_keys=True)), []).append(r)
    header = ["configuration", "seeds", "epochs", "training wall time (its batch)"]
    differ = [k for k, v in shared.items() if len(v) > 1]
    header += differ
    rows = []
    for (model, key), rs in groups.items():
        config = json.loads(key)
        others = [json.loads(k) for (m, k) in groups if m == model and k != key]
        differs = [k for k in config if any(o.get(k) != config[k] for o in others)]
        label = md_text(model) + "".join(f", {md_text(k)} = {md_text(config[k])}" for k in differs)
        m = rs[0].manifest
        row = [label, ", ".join(md_text(r.manifest["seed"]) for r in rs), md_text(m["epochs"]),
               f"{max(r.manifest['wall_seconds'] for r in rs):.0f} s"]
        if len(shared["device"]) > 1:
            row.append(_by_seed(rs, device))
        if len(shared["code commit"]) > 1:
            row.append(_by_seed(rs, lambda r: md_code(str(r.manifest["git_commit"]), table=True)))
        rows.append(row)
    same = []
    if len(shared["device"]) == 1:
        same.append(f"on {next(iter(shared['device']))}")
    if len(shared["code commit"]) == 1:
        same.append(f"from code commit {md_code(next(iter(shared['code commit'])))}")
    trained = (f" Every run's manifest states it was trained {' '.join(same)}." if same and runs else "")
    if differ and runs:
        trained += f" The table gives the {' and '.join(differ)} each run's manifest states."
    from .chapters import CHAPTERS, notebook_defaults

    # what differs from the chapter's own defaults (the objective chapter's epochs = 2 is its default)
    defaults = notebook_defaults(CHAPTERS[notebook]) if notebook in CHAPTERS else {}
    overrides = {k: v for k, v in params.items() if v is not None and v != defaults.get(k)}
    # results/<profile>/runs/<id>: the bundle installed for the profile these runs belong to
    bundle = installed_bundle(profile, runs[0].path.parents[2]) if runs and len(runs[0].path.parents) > 2 else None
    ids = ", ".join(md_code(r.path.name) for r in runs)
    return (bundle_notice(bundle, profile) + f"**How this page was produced.** Profile {md_code(profile)}"
            + (", overrides " + ", ".join(md_code(f"{k} = {json.dumps(v)}") for k, v in overrides.items())
               if overrides else ", no overrides")
            + f"; rendered at commit {md_code(git_commit())}.{trained} "
            + f"{len(runs)} runs in {len(groups)} configurations. "
            + f"Rerun this chapter: {md_code(rerun_command(notebook, profile, overrides))}; "
            + "a run whose configuration is unchanged is reused from `results/`, not retrained.\n\n"
            + f"<details><summary>The runs behind this page</summary>\n\n{markdown_table(header, rows)}\n\n"
            + f"Run ids (folders in {md_code(f'results/{profile}/runs/')}): {ids}.\n\n</details>")


def _by_seed(runs: Sequence[Run], what: Any) -> str:
    """``what(run)`` of a configuration's runs: one value, or each value with the seeds it holds for
    ('`abc` (seeds 0, 1); `def` (seed 2)'), so a reader sees which commit trained which run."""
    seeds: dict[str, list[str]] = {}
    for r in runs:
        seeds.setdefault(what(r), []).append(md_text(r.manifest["seed"]))
    if len(seeds) == 1:
        return next(iter(seeds))
    return "; ".join(f"{v} (seed{'s' if len(s) > 1 else ''} {', '.join(s)})" for v, s in seeds.items())


def bundle_notice(bundle: dict[str, Any] | None, profile: str | None = None) -> str:
    """Where the page's runs come from when its profile renders an installed results bundle: a
    line, or a warning when the bundle was made by other code than the page's (installed on request).

    What bundle.json says about itself (device, dates, commits, code version) is said as the
    bundle's statement: import checked every file against the bundle's own SHA-256 sums, which
    shows the files arrived intact, not who or what made them. Every string from the bundle goes in
    through ``md_text`` or ``md_code``."""
    if bundle is None:
        return ""
    p = bundle["provenance"]
    name = md_code(Path(str(bundle["source"])).name)
    origin = (f"trained on {md_text(p['device_name'])} ({md_text(p['device'])}) and exported on "
              f"{md_text(str(p['created'])[:10])} at commit {md_code(p['git_commit'])}")
    if bundle.get("other_code"):
        changes = "; ".join(md_text(c) for c in bundle["changes"]) or "the groups of runs the profile trains"
        return (f"> **Numbers from other code.** This page renders the results bundle {name}, which states it was "
                f"made by code version {md_code(p['code_version'])} (not this checkout's, {md_code(code_version())}), "
                f"{origin}. Where that code differs from this checkout: {changes}. What the page shows is what that "
                "code computed.\n\n")
    group = f"mnistgen train all --profile {profile or bundle.get('profile', 'P')} --group NAME"
    return (f"**Results bundle.** The runs and numbers on this page come from {name}; the bundle states they were "
            f"{origin}. Every file was checked against the bundle's own SHA-256 sums at import (intact, not altered "
            "in transit); that this code made them is confirmed only by retraining a group and comparing "
            f"({md_code(group)}; `mnistgen edition status` lists the groups). The machine that rendered the page "
            "trained nothing.\n\n")


def published(name: str) -> dict[str, Any]:
    """A published table from ``book/published.yml`` (source, citation key or URL, rows), so that no
    chapter types a number it did not compute."""
    import yaml

    tables = yaml.safe_load(PUBLISHED.read_text())
    if name not in tables:
        raise KeyError(f"{PUBLISHED} has no table {name!r}; it has {sorted(tables)}")
    return tables[name]


def published_value(table: dict[str, Any], key: str, **match: Any) -> float | None:
    """The value ``key`` of the row of ``table`` matching ``match`` (None if the source has no such row)."""
    for row in table["rows"]:
        if all(row.get(k) == v for k, v in match.items()):
            return row[key]
    return None


def results_markdown(m: dict[str, Any]) -> str:
    """The README's results at a glance, from one ``results/<profile>/metrics.json`` (mean ± sd over
    seeds): ``python -m mnistgen summary --profile P`` prints it, so that no number is typed by hand.
    Its strings (profile, yardstick names, settings) go in through ``md_text``: the file may come
    with a results bundle."""
    names, n = m["yardsticks"], len(m["seeds"])

    def by(model: str, key: str, digits: int = 2) -> str:
        return " / ".join(cell(m[model]["by_yardstick"][y], key, digits) for y in names)

    ys = " / ".join(md_text(y) for y in names)
    rows = [[f"classifier test accuracy ({ys})", " / ".join(f"{100 * m['classifiers'][y]['test_accuracy']:.2f}%" for y in names)]]
    if "gan" in m:
        c = m["gan_choice"]
        digits = m.get("top_digits", {}).get("gan")
        rows.append([f"GAN (β1 = {md_text(c['beta1'])}, batch {md_text(c['batch_size'])}, the sweep's pick): FID {ys} / IS / Parzen (nats) / "
                     "top-class share" + (" (that digit)" if digits else ""),
                     f"{by('gan', 'fid')} / {cell(m['gan'], 'inception_score')} / "
                     f"{cell(m['gan'], 'parzen_ll', 0)} / {cell(m['gan'], 'top_class_share')}"
                     + (f" ({digit_counts(digits)})" if digits else "")])
    if "acgan" in m:
        rows.append([f"AC-GAN: class accuracy {ys}; FID {md_text(names[0])} / IS",
                     f"{by('acgan', 'class_accuracy', 3)}; {cell(m['acgan'], 'fid')} / {cell(m['acgan'], 'inception_score')}"])
    if "vae" in m:
        v = m["vae"]
        images = "all 10,000 test images" if v["nll_images"] >= 10_000 else f"{v['nll_images']:,} random test images"
        rows.append([f"VAE: test NLL (k = {v['nll_k']:,}, {images}) / test ELBO",
                     f"{cell(v, 'test_nll')} / {cell(v, 'test_elbo')}"])
    real = m["real"]
    rows.append([f"real training images: FID {ys} / IS / Parzen",
                 " / ".join(f"{real['by_yardstick'][y]['fid']:.2f}" for y in names)
                 + f" / {real['inception_score']:.2f} / {real['parzen_ll']:.0f}"])
    out = [markdown_table([f"{md_text(m['profile'])} profile", f"mean ± sd over {n} seeds"], rows)]
    if m.get("gan_sweep"):
        out.append(markdown_table(["β1", "batch", "epochs", "final FID", "final IS", "top-class share"],
                                  [[md_text(r["beta1"]), md_text(r["batch_size"]), md_text(r["epochs"]),
                                    cell(r, "fid", 1), cell(r, "inception_score"), cell(r, "top_class_share")]
                                   for r in m["gan_sweep"]]))
    if m.get("vae_iwae"):
        out.append(markdown_table(["objective", "k", "epochs", "seeds", "test NLL (nats)", "active units"],
                                  [[md_text(r["objective"]), md_text(r["k"]), md_text(r["epochs"]), len(r["seeds"]),
                                    cell(r, "test_nll"), cell(r, "active_units", 1)] for r in m["vae_iwae"]]))
    if m.get("findings"):  # the evaluation chapter's sentences, each computed from a test on the numbers in it
        labels = {"build": "This build", "sweep": "The sweep", "trend": "The pick's trend",
                  "long": "The pick trained longer", "gan": "The GAN", "objective": "The generator loss",
                  "acgan": "The labels", "vae": "The VAE", "rank": "The yardsticks", "copy": "Copies"}
        order = [k for k in labels if k in m["findings"]] + sorted(set(m["findings"]) - set(labels))
        out.append("\n".join(f"- **{labels.get(k, md_text(k))}.** {md_text(m['findings'][k])}" for k in order))
    return "\n\n".join(out)
