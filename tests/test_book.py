"""The report as a reader gets it: figures in the committed executed chapters, then the built
book opened page by page in headless Chromium.

The book is built from the nbval reference notebooks (tests/golden: every chapter executed with
the `smoke` profile), so this test needs no training and checks what `make book` assembles.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

GOLDEN = REPO / "tests" / "golden"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Every figure a chapter glues: name -> (min width, min height) in pixels at the book's 100 dpi.
EXPECTED_FIGURES = {
    "01_gan_objective": {"obj_theory": (400, 250), "obj_measured": (800, 250), "obj_samples": (500, 200)},
    "02_gan_experiments": {"gan_samples": (400, 400), "gan_interp": (500, 400), "gan_curves": (800, 250),
                           "gan_strip": (100, 300)},
    "03_vae": {"vae_curves": (1000, 250), "vae_recon": (500, 200), "vae_samples": (400, 400),
               "vae_interp": (500, 400), "vae_latent": (800, 400)},
    "04_acgan": {"acgan_grid": (400, 400), "acgan_morph": (500, 300), "acgan_curves": (1000, 250)},
    "05_evaluation": {"eval_classes": (600, 250), "eval_nn": (500, 150)},
}


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


@pytest.mark.parametrize("stem", sorted(EXPECTED_FIGURES))
def test_every_expected_figure_is_a_valid_non_blank_png(stem):
    pngs = glued_pngs(GOLDEN / f"{stem}.ipynb")
    assert set(EXPECTED_FIGURES[stem]) <= set(pngs), f"{stem}: missing {set(EXPECTED_FIGURES[stem]) - set(pngs)}"
    for name, (min_w, min_h) in EXPECTED_FIGURES[stem].items():
        img = Image.open(io.BytesIO(pngs[name]))
        img.verify()  # a truncated or corrupt PNG raises here
        img = Image.open(io.BytesIO(pngs[name])).convert("L")
        w, h = img.size
        assert w >= min_w and h >= min_h, f"{name}: {w}x{h}, expected at least {min_w}x{min_h}"
        pixels = np.asarray(img, dtype=float)
        assert pixels.std() > 5, f"{name} is blank (pixel std {pixels.std():.1f})"


def _book_sources(dst: Path) -> None:
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, dst / name)
    shutil.copytree(REPO / "book", dst / "book", ignore=shutil.ignore_patterns("generated"))
    shutil.copytree(GOLDEN, dst / "book" / "generated")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    if not (REPO / "book" / "_static" / "mathjax" / "tex-svg.js").is_file():
        pytest.fail("book/_static/mathjax/tex-svg.js is missing: run `make test` (it fetches MathJax)")
    root = tmp_path_factory.mktemp("book")
    _book_sources(root)
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", "--all", "-W", "-n", "--keep-going", str(root)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"jupyter-book build failed or warned:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "warning" not in r.stderr.lower(), r.stderr[-3000:]
    return root / "_build" / "html"


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


@pytest.fixture(scope="module")
def server(built_book):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


# What a reader must see on every page, checked in the browser's DOM (returns a list of problems):
# - no Markdown table left as text: no literal separator row (|---|, or |—| after smart quotes
#   turned the dashes into dashes of another kind) and no paragraph made of |-delimited rows;
# - each chapter's provenance ("How this page was produced") followed by a rendered <table>;
# - code collapsed: the only code cell whose source shows is the one tagged `parameters`
#   (it says how to rerun); every other cell's source sits behind the show/hide toggle;
# - no code line cut at the page's edge: visible <pre> blocks do not overflow sideways.
PAGE_PROBLEMS_JS = r"""
(isChapter) => {
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
      if (!input) continue;
      const params = cell.classList.contains('tag_parameters');
      if (params && !visible(input)) problems.push('the parameters cell is hidden');
      if (!params && visible(input)) {
        problems.push('code shown outside the parameters cell: ' + JSON.stringify(input.textContent.trim().slice(0, 60)));
      }
    }
  }
  for (const pre of article.querySelectorAll('pre')) {
    if (visible(pre) && pre.scrollWidth > pre.clientWidth + 2) {
      problems.push('a code line is cut at the edge: ' + JSON.stringify(pre.textContent.trim().slice(0, 60)));
    }
  }
  return problems;
}
"""


def page_problems(page, chapter: bool) -> list[str]:
    return page.evaluate(PAGE_PROBLEMS_JS, chapter)


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"])


@pytest.mark.browser
def test_every_page_in_headless_chromium(server):
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    report = {}
    with sync_playwright() as p:
        browser = _launch(p)
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
            if n_math:
                page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=20_000)
                rendered = page.eval_on_selector_all("mjx-container svg", "els => els.length")
                assert rendered > 0, f"{doc}: {n_math} equations, none rendered by MathJax"
            links = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal",
                                              "els => els.map(e => e.href)")
            for href in links:
                r = page.request.get(href.split("#")[0])
                assert r.ok, f"{doc}: table-of-contents link {href} -> {r.status}"
            chapter = "/generated/" in f"/{doc}"
            if found := page_problems(page, chapter):
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
    assert sum(v["images"] for v in report.values()) >= sum(len(f) for f in EXPECTED_FIGURES.values())
    chapters = [d for d in report if "/generated/" in f"/{d}"]
    assert all(report[d]["tables"] >= 1 for d in chapters), report


# A chapter page as it looked before the fix: the provenance rows left as text with their
# separator's dashes turned into em dashes, and a code cell open outside the parameters cell.
BROKEN_PAGE = """<html><body><article>
<div class="cell tag_parameters"><div class="cell_input"><pre>profile = "quick"</pre></div></div>
<div class="cell"><div class="cell_input"><pre>from mnistgen import report</pre></div>
<div class="cell_output"><p><strong>How this page was produced.</strong> Profile quick.</p>
<p>| run | seed | epochs | |\u2014|\u2014|\u2014| | gan-seed0-abc | 0 | 15 |</p></div></div>
</article></body></html>"""

FIXED_PAGE = """<html><body><article>
<div class="cell tag_parameters"><div class="cell_input"><pre>profile = "quick"</pre></div></div>
<div class="cell tag_hide-input"><details class="hide above-input"><summary>Show code</summary>
<div class="cell_input"><pre>from mnistgen import report</pre></div></details>
<div class="cell_output"><p><strong>How this page was produced.</strong> Profile quick.</p>
<table><tr><th>run</th><th>seed</th></tr><tr><td>gan-seed0-abc</td><td>0</td></tr></table></div></div>
</article></body></html>"""


@pytest.mark.browser
def test_the_page_checks_catch_a_broken_table_and_open_code():
    """The checks above are not vacuous: a page with the reported defects fails them, its fix passes."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_content(BROKEN_PAGE)
        broken = page_problems(page, True)
        page.set_content(FIXED_PAGE)
        fixed = page_problems(page, True)
        page.set_viewport_size({"width": 300, "height": 600})
        page.set_content(FIXED_PAGE.replace('profile = "quick"', "x = " + "1234567890" * 20).replace(
            "<pre>", '<pre style="white-space: pre">', 1))
        cut = page_problems(page, True)
        browser.close()
    joined = "\n".join(broken)
    assert "a Markdown table shown as text" in joined
    assert "a paragraph of table rows" in joined
    assert "provenance is not followed by a rendered <table>" in joined
    assert "code shown outside the parameters cell" in joined
    assert fixed == []
    assert any("cut at the edge" in c for c in cut), cut
