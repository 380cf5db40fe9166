"""What each rendered page of the book is: the profile and parameters its chapter ran with.

papermill records the parameters it injected in the executed notebook (``metadata.papermill.
parameters``), whether it was run by ``mnistgen render`` / ``make run`` or by papermill's own
command line, so the rendered notebook itself says what the page is. A book whose pages were
rendered with different profiles or parameters (``make run`` replaces one page) is a *mixed* book:
its sentences that compare chapters, and the introduction's findings, may speak of another page's
runs. The book build (``book/_ext/offline_book.py``) flags it on every page and in the
introduction; the console says it after the build (``mnistgen pages``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runs import REPO_DIR

GENERATED_DIR = REPO_DIR / "book" / "generated"


@dataclass(frozen=True)
class Page:
    stem: str  # the notebook's file stem, e.g. 02_gan_experiments
    profile: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def edition(self) -> tuple[str, str]:
        """Pages of one edition share this: the profile and no overrides of any parameter."""
        return self.profile, json.dumps(self.overrides, sort_keys=True)

    def describe(self) -> str:
        over = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(self.overrides.items()))
        return f"profile {self.profile}" + (f" with {over}" if over else ", no overrides")


def read_page(path: Path) -> Page | None:
    """The page a rendered notebook is, or None where it carries no papermill record (not rendered
    by papermill) or cannot be read."""
    try:
        meta = json.loads(Path(path).read_text())["metadata"]["papermill"]
        params = dict(meta["parameters"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    profile = params.pop("profile", "quick")  # the notebooks' own default
    return Page(Path(path).stem, str(profile), {k: v for k, v in params.items() if v is not None})


def book_pages(generated: Path | None = None) -> dict[str, Page]:
    """Every rendered chapter's page (in ``generated``, default book/generated), by stem."""
    pages = (read_page(p) for p in sorted(Path(generated or GENERATED_DIR).glob("*.ipynb")))
    return {p.stem: p for p in pages if p is not None}


def mixed(pages: dict[str, Page]) -> bool:
    return len({p.edition for p in pages.values()}) > 1


def majority(pages: dict[str, Page]) -> tuple[str, str] | None:
    """The edition most pages belong to (ties: the one without overrides, then by profile name)."""
    if not pages:
        return None
    counts: dict[tuple[str, str], int] = {}
    for p in pages.values():
        counts[p.edition] = counts.get(p.edition, 0) + 1
    return max(counts, key=lambda e: (counts[e], e[1] == "{}", e[0]))


def summary(pages: dict[str, Page]) -> list[str]:
    """One line per page: its stem and what it is; for the console and the introduction."""
    return [f"{stem}: {page.describe()}" for stem, page in sorted(pages.items())]
