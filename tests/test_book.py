"""The report as a reader gets it: figures in the committed executed chapters, then the built
book opened page by page in headless Chromium.

The book is built from the nbval reference notebooks (tests/golden: every chapter executed with
the `smoke` profile), so this test needs no training and checks what `make book` assembles.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bookbuild import CHROMIUM, GOLDEN, launch
from conftest import REPO

ARTIFACTS = REPO / "tests" / "artifacts"

# Every figure a chapter glues: name -> (min width, min height) in pixels at the book's 100 dpi.
# Multi-panel figures are a column wide (plots.COLUMN_IN, 672 px shown) with their panels stacked.
EXPECTED_FIGURES = {
    "01_gan_objective": {"obj_theory": (400, 250), "obj_measured": (560, 500), "obj_strong": (560, 500),
                         "obj_samples": (500, 150),  # four rows of ten digits
                         "obj_long_fig": (560, 450), "obj_long_samples": (500, 150)},
    "02_gan_experiments": {"gan_samples": (400, 400), "gan_interp": (500, 400), "gan_curves": (560, 550),
                           "gan_strip": (100, 300), "gan_quality": (560, 450), "gan_sweep": (560, 450),
                           "gan_sweep_samples": (500, 150), "gan_long_fig": (560, 450)},
    "03_vae": {"vae_curves": (560, 800), "iwae_k": (400, 250), "iwae_curves": (560, 300), "vae_recon": (500, 200), "vae_samples": (400, 400),
               "vae_interp": (500, 400), "vae_latent": (450, 900)},
    "04_acgan": {"acgan_grid": (400, 400), "acgan_morph": (500, 250), "acgan_curves": (560, 800),
                 "acgan_quality": (560, 450)},
    "05_evaluation": {"eval_side": (500, 300), "eval_classes": (560, 250), "eval_nn": (500, 120)},
}
# Figures of the follow-up groups (edition.followup_groups): drawn once the edition holds them.
FOLLOWUP_FIGURES = {"gan_long_fig", "obj_long_fig", "obj_long_samples"}
# The figures that are one grid of digits: name -> (rows, columns) of tiles, each of which must
# hold a digit (not one flat colour).
DIGIT_GRIDS = {"gan_samples": (10, 10), "gan_interp": (8, 10), "gan_strip": (6, 2), "vae_recon": (4, 10),
               "vae_samples": (10, 10), "vae_interp": (8, 10), "acgan_grid": (10, 10), "eval_nn": (10, 8), "obj_long_samples": (4, 10),
               "eval_side": (6, 10)}


def glued_pngs(notebook: Path) -> dict[str, bytes]:
    """PNG bytes of every figure a notebook glued (myst-nb stores them in the cell outputs)."""
    nb = json.loads(notebook.read_text())
    out = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            png = o.get("data", {}).get("application/papermill.record/image/png")
            if name and png:
                out[name] = base64.b64decode(png)
    return out


def fresh_pngs(stem: str, tmp_path: Path) -> dict[str, bytes]:
    """The figures of chapter ``stem`` as the current code draws them (smoke profile).

    In a full run nbval has just executed the reference notebook and kept its figures
    (``conftest.FRESH_FIGURES``); run alone, this test executes the notebook itself."""
    from conftest import FRESH_FIGURES

    folder = FRESH_FIGURES / stem
    if not folder.is_dir():
        import papermill

        papermill.execute_notebook(str(GOLDEN / f"{stem}.ipynb"), str(tmp_path / f"{stem}.ipynb"),
                                   kernel_name="python3", progress_bar=False, cwd=str(REPO))
        return glued_pngs(tmp_path / f"{stem}.ipynb")
    return {p.stem: p.read_bytes() for p in folder.glob("*.png")}


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-d mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def digit_tiles(png: bytes) -> list[list[np.ndarray]]:
    """The tiles of a digit grid drawn by ``plots._grid_figure``, as grey arrays, row by row.

    Digits sit on black, tiles are separated by white padding, the figure is white: the grid is
    where most pixels are not white; inside it, rows and columns of white alone are padding.
    Runs shorter than half the longest (tick labels, a title) are not tiles; columns are read in
    the rows of tiles alone, so a panel's title between them (``plots.pair_panels``) is not one.
    """
    g = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    dark = g < 200
    cols, rows = dark.sum(0), dark.sum(1)
    cs, rs = np.nonzero(cols > 0.3 * cols.max())[0], np.nonzero(rows > 0.3 * rows.max())[0]
    box = g[rs[0]:rs[-1] + 1, cs[0]:cs[-1] + 1]
    def tile_runs(mask):
        runs = _runs(mask)
        longest = max(b - a for a, b in runs)
        return [(a, b) for a, b in runs if b - a >= longest / 2]
    tr = tile_runs((box < 200).any(1))
    in_tiles = np.concatenate([box[r0:r1] for r0, r1 in tr])
    tc = tile_runs((in_tiles < 200).any(0))
    return [[box[r0:r1, c0:c1] for c0, c1 in tc] for r0, r1 in tr]


def blank_tiles(png: bytes, shape: tuple[int, int]) -> list[str]:
    """Problems of a digit grid: a tile count other than ``shape``, or tiles of one flat colour."""
    tiles = digit_tiles(png)
    got = (len(tiles), len(tiles[0]) if tiles else 0)
    if got != shape:  # a white tile merges with the padding; a missing image leaves a gap
        return [f"{got[0]} x {got[1]} tiles instead of {shape[0]} x {shape[1]}"]
    # a digit's strokes against black: grey-level sd ~15-35 at any size; a flat tile: ~0
    return [f"tile ({i}, {j}) is blank (sd {t.std():.1f})" for i, row in enumerate(tiles)
            for j, t in enumerate(row) if t.std() < 5]


@pytest.mark.parametrize("stem", sorted(EXPECTED_FIGURES))
def test_every_figure_the_current_code_draws_is_there_and_not_blank(stem, tmp_path):
    pngs = fresh_pngs(stem, tmp_path)
    assert set(pngs) == set(EXPECTED_FIGURES[stem]), f"{stem}: glued {sorted(pngs)}, expected {sorted(EXPECTED_FIGURES[stem])}"
    for name, (min_w, min_h) in EXPECTED_FIGURES[stem].items():
        img = Image.open(io.BytesIO(pngs[name]))
        img.verify()  # a truncated or corrupt PNG raises here
        img = Image.open(io.BytesIO(pngs[name])).convert("L")
        w, h = img.size
        assert w >= min_w and h >= min_h, f"{name}: {w}x{h}, expected at least {min_w}x{min_h}"
        pixels = np.asarray(img, dtype=float)
        assert pixels.std() > 5, f"{name} is blank (pixel std {pixels.std():.1f})"
        if name in DIGIT_GRIDS:
            assert not blank_tiles(pngs[name], DIGIT_GRIDS[name]), f"{name}: {blank_tiles(pngs[name], DIGIT_GRIDS[name])}"


def test_the_tile_check_catches_a_blank_digit():
    """A grid with a black tile, a white (saturated) tile or a missing row fails the check; the
    intact grid passes."""
    import matplotlib.pyplot as plt
    from conftest import DATA

    from mnistgen import data, plots

    images = data.load_mnist(DATA, train=False).images[:20]

    def png(x):
        fig = plots.sample_grid(x, nrow=10, size=5.0)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    assert blank_tiles(png(images), (2, 10)) == []
    black = images.clone()
    black[13] = 0
    assert blank_tiles(png(black), (2, 10)) == ["tile (1, 3) is blank (sd 0.0)"]
    white = images.clone()
    white[4] = 255
    assert blank_tiles(png(white), (2, 10)) == ["tile (0, 4) is blank (sd 0.0)"]
    assert blank_tiles(png(images[:10]), (2, 10)) == ["1 x 10 tiles instead of 2 x 10"]  # a row missing


def test_built_html_fetches_nothing_from_other_hosts(built_book):
    import re

    for page in built_book.rglob("*.html"):
        html = page.read_text()
        external = re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="(https?://[^"]+)"', html)
        assert not external, f"{page.name} loads {external}"
    assert (built_book / "_static" / "mathjax" / "tex-svg.js").is_file()


def _toc_pages() -> list[str]:
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for c in toc["chapters"]]


# What a reader must see on every page, checked in the browser's DOM (returns a list of problems):
# - no Markdown table left as text: no literal separator row (|---|, or |—| after smart quotes
#   turned the dashes into dashes of another kind) and no paragraph made of |-delimited rows;
# - each chapter's provenance ("How this page was produced") followed by a rendered <table>;
# - code collapsed: no code cell's source shows (the parameters cell is removed: its defaults are
#   not the page's values, which the provenance paragraph states); the rest sit behind the toggle;
# - every results table (not the runs table in its <details>) numbered and captioned;
# - no raw MyST role ({numref}, {glue:...}, {cite:...}) and no quoted string printed as output;
# - no "mean ± sd" in a table cell wrapped over lines;
# - no code line cut at the page's edge: visible <pre> blocks do not overflow sideways;
# - every equation typeset by MathJax (each .math holds an <mjx-container>), none an error box;
# - every figure the chapter's source glues (by its label) present, with a loaded image;
# - nothing wider than the text column: no table or display equation overflows it, and no image is
#   shrunk below FIGURE_SCALE of its size (its 10-pt text would read under 9 pt, plots.COLUMN_IN);
# - no raw cross-reference label ({eq}`...`, eq-...) in the page's contents panel.
# Figures are drawn at 100 dpi with 10-pt text (13.9 px); 9 pt on a 96-dpi screen is 12 px.
FIGURE_SCALE = (9 * 96 / 72) / (10 * 100 / 72)  # 0.864
PAGE_PROBLEMS_JS = r"""
([isChapter, figureLabels, figureScale]) => {
  const problems = [];
  const article = document.querySelector('article') || document.body;
  const visible = el => el.checkVisibility();  // false inside a closed <details> (content-visibility)
  const prose = article.cloneNode(true);
  prose.querySelectorAll('pre, code, .cell_input, script, style').forEach(e => e.remove());
  const text = prose.textContent;
  const sep = text.match(/\|\s*[-\u2012\u2013\u2014\u2015:]{1,3}\s*\|/);
  if (sep) problems.push('a Markdown table shown as text: ' + JSON.stringify(sep[0]));
  for (const p of article.querySelectorAll('p')) {
    const t = p.textContent.trim();
    if (/^\|.*\|/.test(t) && (t.match(/\|/g) || []).length >= 4) {
      problems.push('a paragraph of table rows: ' + JSON.stringify(t.slice(0, 80)));
    }
  }
  if (isChapter) {
    const prov = [...article.querySelectorAll('p')].filter(p => p.textContent.includes('How this page was produced'));
    if (!prov.length) problems.push('no provenance paragraph');
    for (const p of prov) {
      const box = p.closest('.cell_output, .output') || p.parentElement;
      if (!box.querySelector('table')) problems.push('provenance is not followed by a rendered <table>');
    }
    for (const cell of article.querySelectorAll('div.cell')) {
      const input = cell.querySelector('.cell_input');
      if (input && visible(input)) {  // the parameters cell too: its defaults are not the page's values
        problems.push('code shown: ' + JSON.stringify(input.textContent.trim().slice(0, 60)));
      }
    }
    for (const t of article.querySelectorAll('table')) {  // results tables; the runs table sits in <details>
      if (t.closest('details')) continue;
      const cap = t.querySelector('caption');
      if (!cap || !cap.querySelector('.caption-number') || !cap.textContent.replace(/Table \d+/, '').trim()) {
        problems.push('a table without a number and caption: ' + JSON.stringify(t.textContent.trim().slice(0, 50)));
      }
    }
  }
  const shown = article.cloneNode(true);
  shown.querySelectorAll('.cell_input, script, style').forEach(e => e.remove());
  const role = shown.textContent.match(/\{(numref|glue(:\w+)?|cite(:\w+)?|doc|ref|eq|term)\}`?/);
  if (role) problems.push('a raw MyST role: ' + JSON.stringify(role[0]));
  for (const pre of article.querySelectorAll('.cell_output pre, .output pre')) {
    if (/^\s*['"]/.test(pre.textContent)) {
      problems.push('a quoted string printed as output: ' + JSON.stringify(pre.textContent.trim().slice(0, 60)));
    }
  }
  for (const td of article.querySelectorAll('td')) {  // a number and its sd on one line
    if (!visible(td) || !/\d\s*±\s*\d/.test(td.textContent)) continue;
    const range = document.createRange();
    for (const m of td.textContent.matchAll(/[−-]?[\d,.]+\s*±\s*[\d,.]+/g)) {
      const tops = new Set();
      const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
      let node, offset = 0;
      while ((node = walker.nextNode())) {  // the rectangles of the match's characters: one line each
        const start = Math.max(m.index - offset, 0), end = Math.min(m.index + m[0].length - offset, node.length);
        if (start < end) {
          range.setStart(node, start);
          range.setEnd(node, end);
          for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.top));
        }
        offset += node.length;
      }
      if (tops.size > 1) problems.push('a number wraps in a table cell: ' + JSON.stringify(m[0]));
    }
  }
  for (const pre of article.querySelectorAll('pre')) {
    if (visible(pre) && pre.scrollWidth > pre.clientWidth + 2) {
      problems.push('a code line is cut at the edge: ' + JSON.stringify(pre.textContent.trim().slice(0, 60)));
    }
  }
  for (const m of article.querySelectorAll('.math')) {
    if (!m.querySelector('mjx-container svg')) {
      problems.push('an equation not typeset: ' + JSON.stringify(m.textContent.trim().slice(0, 60)));
    }
  }
  for (const e of article.querySelectorAll('mjx-merror, [data-mml-node="merror"]')) {  // CHTML, SVG output
    problems.push('an equation MathJax could not read: ' + JSON.stringify(e.getAttribute('data-mjx-error') || e.textContent.trim().slice(0, 80)));
  }
  for (const t of article.querySelectorAll('table')) {
    const box = t.parentElement;
    if (visible(t) && (t.scrollWidth > box.clientWidth + 2 || t.scrollWidth > article.clientWidth + 2)) {
      problems.push('a table wider than its column (' + t.scrollWidth + ' px): ' + JSON.stringify(t.textContent.trim().slice(0, 50)));
    }
  }
  for (const m of article.querySelectorAll('div.math')) {
    if (visible(m) && m.scrollWidth > m.clientWidth + 2) {
      problems.push('an equation wider than its column (' + m.scrollWidth + ' px): ' + JSON.stringify(m.textContent.trim().slice(0, 50)));
    }
  }
  for (const img of article.querySelectorAll('img')) {
    const shown = img.getBoundingClientRect().width;
    if (visible(img) && img.naturalWidth > 0 && shown < figureScale * img.naturalWidth) {
      const fig = img.closest('figure');
      problems.push('a figure shrunk to ' + (shown / img.naturalWidth).toFixed(2) + ' of its size: ' + ((fig && fig.id) || img.src.slice(-40)));
    }
  }
  for (const a of document.querySelectorAll('.bd-toc a, .bd-toc-nav a, .toc-entry a')) {
    if (/\{|eq-/.test(a.textContent)) problems.push('a raw label in the contents panel: ' + JSON.stringify(a.textContent.trim()));
  }
  for (const label of figureLabels) {
    const fig = document.getElementById(label);
    const img = fig && fig.querySelector('img');
    if (!img) problems.push('figure ' + label + ' is missing');
    else if (!(img.complete && img.naturalWidth > 0)) problems.push('figure ' + label + ' has no image');
  }
  return problems;
}
"""


def figure_labels(doc: str) -> list[str]:
    """The labels of the figures chapter ``doc`` (``book/generated/<stem>``) glues, from its source."""
    import re

    src = REPO / "notebooks" / f"{Path(doc).name}.py"
    if not src.is_file():
        return []
    return re.findall(r"\{glue:figure\} \w+\n# :name: ([\w-]+)", src.read_text())


def wait_for_math(page) -> None:
    """Until MathJax has typeset the page (its startup promise), where the page loads MathJax."""
    page.wait_for_function("!window.MathJax || (MathJax.startup && MathJax.startup.promise)", timeout=20_000)
    page.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true")


def page_problems(page, chapter: bool, figures: list[str] = ()) -> list[str]:
    return page.evaluate(PAGE_PROBLEMS_JS, [chapter, list(figures), FIGURE_SCALE])


@pytest.mark.browser
def test_every_page_in_headless_chromium(server):
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    report = {}
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        problems: dict[str, list[str]] = {}
        for doc in _toc_pages():
            url = f"{server}/{doc}.html"
            resp = page.goto(url, wait_until="load")
            assert resp is not None and resp.ok, f"{url}: {resp.status if resp else 'no response'}"
            page.wait_for_load_state("networkidle")
            imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.complete && e.naturalWidth > 0])")
            assert all(ok for _, ok in imgs), f"{doc}: images not loaded: {[s for s, ok in imgs if not ok]}"
            n_math = page.eval_on_selector_all(".math", "els => els.length")
            wait_for_math(page)
            links = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal",
                                              "els => els.map(e => e.href)")
            for href in links:
                r = page.request.get(href.split("#")[0])
                assert r.ok, f"{doc}: table-of-contents link {href} -> {r.status}"
            # a results chapter (the appendix on how the edition was made has no figures or runs table)
            chapter = doc.rsplit("/", 1)[-1] in EXPECTED_FIGURES
            labels = figure_labels(doc)
            if chapter:
                assert labels, f"{doc}: no figure labels found in its source"
            if found := page_problems(page, chapter, labels):
                problems[doc] = found
            tables = page.eval_on_selector_all("article table", "els => els.length")
            report[doc] = {"images": len(imgs), "equations": n_math, "toc_links": len(links), "tables": tables}
            if doc.endswith("02_gan_experiments"):  # the README's picture: parameters, provenance, collapsed code
                page.locator("p", has_text="How this page was produced").first.scroll_into_view_if_needed()
                page.evaluate("window.scrollBy(0, -260)")
                page.screenshot(path=str(ARTIFACTS / "gan_page.png"), full_page=False)
        browser.close()
    (ARTIFACTS / "browser_report.json").write_text(json.dumps(report, indent=2))
    assert not problems, f"pages that do not read as a report: {json.dumps(problems, indent=1)}"
    assert not failed, f"failed requests: {failed}"
    assert not errors, f"console errors: {errors}"
    for stem, figures in EXPECTED_FIGURES.items():  # page by page: each chapter shows its own figures
        # (a follow-up group's figure is glued inside its section's Markdown, drawn only where the
        # edition holds the group: the figure test above checks it, on the smoke profile)
        expected = [f for f in figures if f not in FOLLOWUP_FIGURES]
        assert len(figure_labels(f"book/generated/{stem}")) == len(expected), stem
    chapters = [d for d in report if "/generated/" in f"/{d}"]
    assert all(report[d]["tables"] >= 1 for d in chapters), report


# A chapter page as it looked before the fix: the provenance rows left as text with their
# separator's dashes turned into em dashes, and code cells open (the parameters cell's defaults too).
BROKEN_PAGE = """<html><body><article>
<div class="cell tag_parameters"><div class="cell_input"><pre>profile = "quick"</pre></div></div>
<div class="cell"><div class="cell_input"><pre>from mnistgen import report</pre></div>
<div class="cell_output"><p><strong>How this page was produced.</strong> Profile quick.</p>
<p>| run | seed | epochs | |\u2014|\u2014|\u2014| | gan-seed0-abc | 0 | 15 |</p></div></div>
</article></body></html>"""

FIXED_PAGE = """<html><body><article>
<div class="cell tag_hide-input"><details class="hide above-input"><summary>Show code</summary>
<div class="cell_input"><pre>from mnistgen import report</pre></div></details>
<div class="cell_output"><p><strong>How this page was produced.</strong> Profile quick.</p>
<details open><summary>The runs</summary>
<table><tr><th>run</th><th>seed</th></tr><tr><td>gan-seed0-abc</td><td>0</td></tr></table></details></div></div>
</article></body></html>"""


@pytest.mark.browser
def test_the_page_checks_catch_a_broken_table_and_open_code():
    """The checks above are not vacuous: a page with the reported defects fails them, its fix passes."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_content(BROKEN_PAGE)
        broken = page_problems(page, True)
        page.set_content(FIXED_PAGE)
        fixed = page_problems(page, True)
        page.set_viewport_size({"width": 300, "height": 600})
        page.set_content(FIXED_PAGE.replace("</article>", '<div class="cell_output"><pre style="white-space: pre">'
                                            + "x = " + "1234567890" * 20 + "</pre></div></article>"))
        cut = page_problems(page, True)
        browser.close()
    joined = "\n".join(broken)
    assert "a Markdown table shown as text" in joined
    assert "a paragraph of table rows" in joined
    assert "provenance is not followed by a rendered <table>" in joined
    assert "code shown: " in joined
    assert fixed == []
    assert any("cut at the edge" in c for c in cut), cut


TINY_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")
GOOD_CHAPTER = """<html><body><article>
<p>The loss <span class="math notranslate nohighlight">\\(\\log D(x)\\)</span> and</p>
<div class="math notranslate nohighlight">\\[\\min_G \\max_D V(D, G)\\]</div>
<figure id="fig-x"><img src="data:image/png;base64,{png}"></figure>
<div class="cell tag_hide-input"><details class="hide above-input"><summary>Show code</summary>
<div class="cell_input"><pre>from mnistgen import report</pre></div></details>
<div class="cell_output"><p><strong>How this page was produced.</strong> Profile quick.</p>
<details><summary>The runs</summary><table><tr><th>run</th></tr><tr><td>gan-seed0-abc</td></tr></table></details>
</div></div>
<table><caption><span class="caption-number">Table 1 </span><span class="caption-text">FID.</span></caption>
<tr><th>model</th><th>FID</th></tr><tr><td>GAN</td><td>115\u00a0±\u00a020</td></tr></table>
</article></body></html>""".replace("{png}", TINY_PNG)

def _wide_png(width: int) -> str:
    buf = io.BytesIO()
    Image.new("L", (width, 20), 128).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


# each defect a page can have -> (how to make it from GOOD_CHAPTER, the problem the checks must report)
PAGE_DEFECTS = {
    "no provenance": (lambda h: h.replace("How this page was produced.", "Produced."), "no provenance paragraph"),
    "parameters shown": (lambda h: h.replace("<article>", '<article><div class="cell tag_parameters"><div '
                                             'class="cell_input"><pre>profile = "quick"</pre></div></div>'),
                         "code shown: "),
    "raw role": (lambda h: h.replace("The loss", "The loss of {numref}`fig-x`"), "a raw MyST role: "),
    "quoted string output": (lambda h: h.replace("</article>", '<div class="cell_output"><div class="output '
                                                 "text_plain\"><pre>'The summary, {numref}`x`'</pre></div></div>"
                                                 "</article>"), "a quoted string printed as output"),
    "table without caption": (lambda h: h.replace("</article>", "<table><tr><th>model</th></tr><tr><td>GAN</td>"
                                                  "</tr></table></article>"), "a table without a number and caption"),
    "number wraps": (lambda h: h.replace("</article>", '<table style="width: 60px"><caption><span class="caption-'
                                         'number">Table 1 </span>FID.</caption><tr><td>115 ± 20</td></tr></table>'
                                         "</article>"), "a number wraps in a table cell: \"115 ± 20\""),
    "broken equation": (lambda h: h.replace("\\(\\log D(x)\\)", "\\(x^1^2\\)"), "an equation MathJax could not read"),
    "equation left as text": (lambda h: h.replace("\\[\\min_G \\max_D V(D, G)\\]", "min_G max_D V(D, G)"),
                              "an equation not typeset"),
    "figure missing": (lambda h: h.replace('id="fig-x"', 'id="fig-y"'), "figure fig-x is missing"),
    "figure without its image": (lambda h: h.replace(f"data:image/png;base64,{TINY_PNG}", "missing.png"),
                                 "figure fig-x has no image"),
    "table too wide": (lambda h: h.replace("<table>", '<table style="width: 3000px">'), "a table wider than its column"),
    "equation too wide": (lambda h: h.replace("\\min_G \\max_D V(D, G)", " + ".join(f"x_{{{i}}}" for i in range(200))),
                          "an equation wider than its column"),
    "figure shrunk": (lambda h: h.replace(f'<img src="data:image/png;base64,{TINY_PNG}">',
                                          f'<img style="width: 600px" src="data:image/png;base64,{_wide_png(1000)}">'),
                      "a figure shrunk to 0.60 of its size: fig-x"),
    "raw label in the contents": (lambda h: h.replace("<article>", '<nav class="bd-toc-nav"><a href="#">Why not '
                                                      'equation eq-gan</a></nav><article>'),
                                  "a raw label in the contents panel"),
}


@pytest.mark.browser
def test_each_page_check_fires_on_its_defect():
    """The new checks (and the two that never had to fire) report the defect they guard, one by one."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    mathjax = (REPO / "book" / "_static" / "mathjax" / "tex-svg.js").read_bytes()
    served = {}

    def problems_of(page, html):  # served as a page that loads the book's MathJax, as the book does
        served["html"] = html.replace("</body>", '<script src="/tex-svg.js"></script></body>')
        page.goto("http://book.test/page.html", wait_until="load")
        wait_for_math(page)
        return page_problems(page, True, ["fig-x"])

    def route(r):
        if r.request.url.endswith("/tex-svg.js"):
            r.fulfill(body=mathjax, content_type="application/javascript")
        elif r.request.url.endswith("/page.html"):
            r.fulfill(body=served["html"], content_type="text/html; charset=utf-8")
        else:
            r.fulfill(status=404)

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", route)
        good = problems_of(page, GOOD_CHAPTER)
        found = {name: problems_of(page, make(GOOD_CHAPTER)) for name, (make, _) in PAGE_DEFECTS.items()}
        browser.close()
    assert good == []
    for name, (_, expected) in PAGE_DEFECTS.items():
        assert any(expected in f for f in found[name]), (name, found[name])


@pytest.mark.parametrize("stem", sorted(EXPECTED_FIGURES))
def test_the_reference_notebooks_run_the_chapters_code_as_it_is(stem):
    """nbval executes the code cells of tests/golden, not notebooks/: a chapter edited without
    `make golden` would be tested as it was. Every code cell of the reference is the chapter's."""
    import jupytext

    chapter = [c.source for c in jupytext.read(REPO / "notebooks" / f"{stem}.py").cells if c.cell_type == "code"]
    reference = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for c in json.loads((GOLDEN / f"{stem}.ipynb").read_text())["cells"]
                 if c["cell_type"] == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    assert reference == chapter, f"tests/golden/{stem}.ipynb is stale: run `make golden`"
