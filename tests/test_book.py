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


@pytest.mark.browser
def test_every_page_in_headless_chromium(server):
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    report = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
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
            report[doc] = {"images": len(imgs), "equations": n_math, "toc_links": len(links)}
            if doc.endswith("02_gan_experiments"):
                page.screenshot(path=str(ARTIFACTS / "gan_page.png"), full_page=False)
        browser.close()
    assert not failed, f"failed requests: {failed}"
    assert not errors, f"console errors: {errors}"
    (ARTIFACTS / "browser_report.json").write_text(json.dumps(report, indent=2))
    assert sum(v["images"] for v in report.values()) >= sum(len(f) for f in EXPECTED_FIGURES.values())
