"""The report as one PDF: Jupyter Book's single-page HTML build, printed by Chromium.

Of the three ways to a PDF, this one works offline with what `make test` already installs
(Debian's chromium, driven by Playwright): Jupyter Book's ``pdfhtml`` builder downloads a browser
at run time (pyppeteer; it fails offline), and ``pdflatex`` needs TeX Live (~1 GB of Debian
packages) and re-typesets every page in LaTeX's layout, where the web's figures, glued tables
and MathJax equations are what the book is checked against. Printing the HTML keeps exactly
what the browser tests check: MathJax's equations, the glued figures and tables. The theme's
print styles drop the navigation; ``report.css`` hides the interactive figures (their static
figures stand beside them) and code stays collapsed as on the web.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# A4 with 15 mm margins: 180 mm of text width, 680 CSS px (96 px to the inch), about the web's
# column at the book's scale; the page is laid out at that width to find what would be cut.
PRINT_WIDTH_PX = 680
MARGIN = {"top": "15mm", "bottom": "18mm", "left": "15mm", "right": "15mm"}
FOOTER = ('<div style="font-size: 8px; width: 100%; text-align: center; color: #555;">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')


class PrintError(RuntimeError):
    """The PDF could not be made (no browser, no single-page build, a page that did not load)."""


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise PrintError("chromium is not installed: `make test` installs it (apt-get install chromium)")
    return path


def single_page(build: Path) -> Path:
    """The one page of a single-page build (``jupyter-book build --builder singlehtml``), placed
    where its links resolve.

    Sphinx writes the page under the root document's name (``book/intro.html``, with
    ``index.html`` redirecting to it) but links its images, styles and scripts relative to the
    build's root, so it is copied to ``<build>/report.html`` and printed from there."""
    import re

    index = Path(build) / "index.html"
    if not index.is_file():
        raise PrintError(f"no single-page build at {build}: run `make pdf` (it builds one)")
    target = re.search(r'url=([^"]+)"', index.read_text())
    page = Path(build) / target.group(1) if target else index
    if not page.is_file():
        raise PrintError(f"{index} points to {page}, which is missing: build the book again (make pdf)")
    report = Path(build) / "report.html"
    shutil.copyfile(page, report)
    return report


def print_pdf(build: Path, out: Path, timeout_ms: int = 120_000) -> dict[str, object]:
    """Print the single-page build in folder ``build`` to ``out`` (see ``single_page``).

    Waits until every image has loaded and MathJax has typeset every equation; refuses to print a
    page whose equations failed, whose images did not load or that is wider than the paper.
    Returns what it printed (equations, images, bytes)."""
    html = single_page(build)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PrintError("playwright is not installed: `make venv` installs it") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": PRINT_WIDTH_PX, "height": 960})
            page.emulate_media(media="print")
            page.goto(html.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
            page.wait_for_function("!window.MathJax || (MathJax.startup && MathJax.startup.promise)",
                                   timeout=timeout_ms)
            page.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true")
            state = page.evaluate("""() => ({
                equations: document.querySelectorAll('mjx-container').length,
                errors: document.querySelectorAll('[data-mml-node="merror"]').length,
                images: document.images.length,
                broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
                // what the printed page would cut: tables, display equations, figures wider than the text
                cut: [...document.querySelectorAll('article table, article div.math, article img')]
                  .filter(e => e.checkVisibility() && (e.scrollWidth > e.parentElement.clientWidth + 2
                               || e.getBoundingClientRect().right > document.querySelector('article').getBoundingClientRect().right + 2))
                  .map(e => e.tagName.toLowerCase() + ': ' + e.textContent.trim().slice(0, 50)),
            })""")
            if state["errors"] or state["broken"] or state["cut"]:
                raise PrintError(f"{html}: {state['errors']} equations MathJax could not read; images that did "
                                 f"not load: {state['broken'][:5]}; wider than the printed page: {state['cut'][:5]}")
            page.pdf(path=str(tmp), format="A4", margin=MARGIN, print_background=True, display_header_footer=True,
                     header_template="<span></span>", footer_template=FOOTER, outline=True, tagged=True)
        finally:
            browser.close()
    tmp.replace(out)  # never a half-written PDF under the real name
    return {**state, "bytes": out.stat().st_size}
