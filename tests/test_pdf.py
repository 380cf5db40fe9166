"""`make pdf`'s two steps on the test book: the single-page build, then Chromium's print.

Read back with poppler, as a reader's PDF viewer would: the page count is that of a report, not
of one blank page or of a runaway layout; every chapter's title is in the text; the collapsed
code and the interactive figures are not; one page is rendered to a PNG that is looked at
(tests/artifacts/pdf_page.png, beside the README's screenshot).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bookbuild
from conftest import REPO

ARTIFACTS = REPO / "tests" / "artifacts"
pytestmark = pytest.mark.browser


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: `make test` installs it (apt-get install poppler-utils)")
    return path


def chapter_titles() -> list[str]:
    """Each page's first heading, from its source (book/*.md, notebooks/*.py), in the TOC's order."""
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    titles = []
    for doc in [toc["root"]] + [c["file"] for c in toc["chapters"]]:
        name = Path(doc).name
        if "generated" in doc:  # a percent-format notebook: the first Markdown heading, "# # Title"
            src, heading = REPO / "notebooks" / f"{name}.py", r"^# # (.+)$"
        else:
            src, heading = REPO / f"{doc}.md", r"^# (.+)$"
        titles.append(re.search(heading, src.read_text(), re.M).group(1).strip())
    return titles


@pytest.fixture(scope="module")
def printed(built_book, tmp_path_factory):
    from mnistgen.printing import print_pdf

    root = built_book.parents[1]  # the sources beside _build/html
    start = time.perf_counter()
    single = bookbuild.build(root, "singlehtml")
    built = time.perf_counter() - start
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    got = print_pdf(single, out)
    return out, {**got, "singlehtml_s": round(built, 1), "print_s": round(time.perf_counter() - start - built, 1)}


def test_the_pdf_is_the_whole_report(printed):
    pdf, info = printed
    text = subprocess.run([_poppler("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = text.split("\f")[:-1]  # pdftotext ends every page with a form feed
    flat = re.sub(r"\s+", " ", text)
    assert 10 <= len(pages) <= 150, f"{len(pages)} pages"
    missing = [t for t in chapter_titles() if re.sub(r"\s+", " ", t) not in flat]
    assert not missing, f"chapter titles not in the PDF's text: {missing}"
    assert "import torch" not in flat, "code that the web page collapses is printed"
    assert "new z₀" not in flat and "latent plane" not in flat, "an interactive figure is printed"
    assert info["equations"] > 20 and info["images"] > 15, info
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "pdf.json").write_text(json.dumps({**info, "pages": len(pages)}, indent=2))


def test_a_printed_page_shows_a_figure(printed, tmp_path):
    pdf, _ = printed
    text = subprocess.run([_poppler("pdftotext"), str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    # the page with the GAN's samples, found by its caption (its math is drawn, not text)
    page = next(i for i, p in enumerate(text.split("\f"), 1) if re.search(r"100 samples.{0,40}of seed 0", re.sub(r"\s+", " ", p)))
    subprocess.run([_poppler("pdftoppm"), "-f", str(page), "-l", str(page), "-r", "70", "-png", "-singlefile",
                    str(pdf), str(tmp_path / "page")], check=True)
    png = tmp_path / "page.png"
    grey = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert grey.shape[0] > grey.shape[1] > 500  # A4, portrait
    # a 10 x 10 grid of digits on black covers ~20% of the page (text alone: ~3% under grey 200)
    assert (grey < 200).mean() > 0.12, "no figure on the page that captions the samples"
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(png, ARTIFACTS / "pdf_page.png")


def test_printing_refuses_a_missing_build(tmp_path):
    from mnistgen.printing import PrintError, print_pdf

    with pytest.raises(PrintError, match="no single-page build"):
        print_pdf(tmp_path, tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()
