"""The README's pictures of the book, taken from a built book in Debian's Chromium (headless).

    .venv/bin/python docs/shots.py [_build/html]

writes docs/findings.png (the introduction's findings box) and docs/gan_sweep.png (the GAN
chapter's sweep figures), at the width a reader sees them (1280 px window), so the README shows
the pages of the edition that was built, not a drawing of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def main(html: Path) -> None:
    pages = {"findings.png": ("book/intro.html", "div.admonition"),
             "gan_sweep.png": ("book/generated/02_gan_experiments.html", "#fig-gan-sweep, #fig-gan-sweep-samples")}
    for name, (page_path, _) in pages.items():
        if not (html / page_path).is_file():
            sys.exit(f"error: {html / page_path} is missing: build the book first (make book)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        for name, (page_path, selector) in pages.items():
            page.goto((html / page_path).resolve().as_uri(), wait_until="load")
            page.wait_for_load_state("networkidle")
            boxes = [b for b in (el.bounding_box() for el in page.query_selector_all(selector)) if b]
            if not boxes:
                sys.exit(f"error: {page_path} has no {selector!r}")
            top, bottom = min(b["y"] for b in boxes), max(b["y"] + b["height"] for b in boxes)
            left, right = min(b["x"] for b in boxes), max(b["x"] + b["width"] for b in boxes)
            clip = {"x": left - 8, "y": top - 8, "width": right - left + 16, "height": bottom - top + 16}
            page.screenshot(path=str(DOCS / name), clip=clip, full_page=True)
            print(f"{DOCS / name}: {page_path} {selector} ({clip['width']:.0f} x {clip['height']:.0f} px)")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html"))
