"""The test book, built once per session: Jupyter Book over the nbval reference notebooks
(tests/golden, every chapter executed with the `smoke` profile), so no test trains for it.

Its interactive figures need their weights scripts (src/mnistgen/widgets.py), which a chapter
writes to the session's results folder when it runs: nbval has run the reference notebooks by
the time the book tests come (tests/golden sorts before test_*.py). A book test run alone
executes the chapters that lack them first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

GOLDEN = REPO / "tests" / "golden"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def book_sources(dst: Path) -> None:
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, dst / name)
    shutil.copytree(REPO / "book", dst / "book", ignore=shutil.ignore_patterns("generated"))
    shutil.copytree(GOLDEN, dst / "book" / "generated")


def ensure_widget_weights(scratch: Path) -> None:
    """Execute (papermill, smoke) every reference chapter whose widget weights the session lacks."""
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    from offline_book import widget_sources

    from mnistgen.widgets import source_of

    missing = sorted({chapter for src, chapter in widget_sources(scratch).items() if not source_of(src).is_file()})
    if missing:
        import papermill

        for stem in missing:
            papermill.execute_notebook(str(GOLDEN / f"{stem}.ipynb"), str(scratch / f"{stem}.executed.ipynb"),
                                       kernel_name="python3", progress_bar=False, cwd=str(REPO))


def build(root: Path, builder: str = "html") -> Path:
    """Build the book under ``root`` (sources copied there) with ``builder``; its output folder."""
    mathjax = REPO / "book" / "_static" / "mathjax" / "tex-svg.js"
    if not mathjax.is_file():
        raise FileNotFoundError("book/_static/mathjax/tex-svg.js is missing: run `make test` (it fetches MathJax)")
    if not (root / "_config.yml").is_file():
        book_sources(root)
        ensure_widget_weights(root)
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", "--all", "-W", "-n", "--keep-going", "--builder", builder, str(root)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"jupyter-book build failed or warned:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "warning" not in r.stderr.lower(), r.stderr[-3000:]
    return root / "_build" / builder


def launch(p):
    """Debian's Chromium through Playwright (no browser download), offline."""
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"])
