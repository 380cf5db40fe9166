"""Sphinx extension: the built book works offline, with what its pages need and nothing else.

1. Jupyter Book v1 always loads sphinx-thebe (live code cells, which need a Binder server). Its
   inline configuration script is added twice, which browsers report as the console error
   "Identifier 'THEBE_JS_URL' has already been declared", and it names a CDN. This book has no
   live cells, so both the inline script and sphinx-thebe.js are dropped from every page.
2. The interactive figures' weights (src/mnistgen/widgets.py): every weights script a rendered
   chapter names (``data-src="widgets/<profile>/<name>.js"``) is copied from the results folder
   into ``_static/widgets/``. A missing one stops the build before anything is written, naming
   the file and the chapter to render, instead of a page whose figure cannot load.
3. A mixed book (``mnistgen.pages``: chapters rendered with different profiles or parameters, as
   after ``make run``) says so at the top of every chapter and of the introduction, naming what
   each page is and how to render the whole book as one edition again.
4. A book rendered from a results bundle that other code made (``make book`` after an edit to a
   module the training-code version hashes: ``mnistgen.bundle``) says so at the top of every page,
   naming the files that differ and how to retrain; once the code matches again, the next
   ``make book`` installs the bundle without that record and the notice is gone.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

WIDGET_SRC = re.compile(r'data-src=\\?"(widgets/[\w.-]+/[\w.-]+\.js)\\?"')


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    def keep(js) -> bool:
        filename = getattr(js, "filename", js) or ""
        body = (getattr(js, "attributes", {}) or {}).get("body", "")
        return "sphinx-thebe" not in str(filename) and "THEBE_JS_URL" not in str(body)
    context["script_files"] = [js for js in scripts if keep(js)]


def widget_sources(srcdir: Path) -> dict[str, str]:
    """page_src -> the chapter (notebook) that names it, over the book's rendered chapters."""
    found = {}
    for nb in sorted(Path(srcdir).glob("book/generated/*.ipynb")):
        for src in WIDGET_SRC.findall(nb.read_text()):
            found.setdefault(src, nb.stem)
    return found


def _check_widgets(app):
    from mnistgen.widgets import source_of

    app.env_widgets = {}
    for src, chapter in widget_sources(app.srcdir).items():
        path = source_of(src)
        if not path.is_file():
            raise ExtensionError(f"chapter {chapter} shows an interactive figure whose weights {path} are missing "
                                 f"(MNISTGEN_RESULTS points elsewhere, or the results were deleted): render the "
                                 f"chapter again (make book, or python -m mnistgen render {chapter})")
        app.env_widgets[src] = path


def _copy_widgets(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for src, path in getattr(app, "env_widgets", {}).items():
        dst = Path(app.outdir) / "_static" / src
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst)


def mixed_notice(pagename: str, book: dict) -> str:
    """The HTML of the mixed-book notice for ``pagename`` ("" where the book is one edition);
    ``book``: the rendered chapters' pages (``mnistgen.pages.book_pages``)."""
    from mnistgen import pages

    if not pages.mixed(book):
        return ""
    stem = pagename.rsplit("/", 1)[-1]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in pages.summary(book))
    if stem in book:
        this = f"<p>This page was rendered with {html.escape(book[stem].describe())}. "
    elif pagename in ("book/intro", "book/conclusion"):
        this = "<p>The findings on this page come from the chapters' renderings listed here. "
    else:
        return ""
    return ('<div class="admonition warning mixed-book"><p class="admonition-title">A mixed book</p>'
            + this + "Its chapters were not all rendered with the same profile and parameters, so a sentence "
            "that speaks of another chapter's models may not describe the runs shown on that chapter's page:</p>"
            f"<ul>{items}</ul><p><code>make book</code> renders every chapter as one edition again (runs "
            "already trained are reused, not retrained).</p></div>")


def other_code_notice(book: dict, results_root: Path | None = None) -> str:
    """The HTML of the other-code notice ("" where the book's edition is this code's or no bundle
    is installed); ``book``: the rendered chapters' pages, whose majority profile is the book's."""
    from mnistgen import pages
    from mnistgen.codeversion import code_version
    from mnistgen.runs import RESULTS_ROOT, installed_bundle

    edition = pages.majority(book)
    if edition is None:
        return ""
    try:
        bundle = installed_bundle(edition[0], results_root or RESULTS_ROOT)
    except (OSError, ValueError):
        return ""
    if not isinstance(bundle, dict):
        return ""
    from mnistgen.bundle import checkout_code, code_changes
    from mnistgen.schemas import Provenance

    prov = bundle.get("provenance") or {}
    # the code may have changed since the edition was installed (`make html` alone): checked again here
    differs_now = checkout_code() != [prov.get("code_version"), prov.get("metric_code_version")]
    if not bundle.get("other_code") and not differs_now:
        return ""
    listed = bundle.get("changes") or []
    if differs_now and bundle.get("checkout_code") != checkout_code():
        try:
            listed = code_changes(edition[0], Provenance.model_validate(prov)) or listed
        except ValueError:
            pass
    changes = "".join(f"<li>{html.escape(str(c))}</li>" for c in listed)
    return ('<div class="admonition warning other-code"><p class="admonition-title">Numbers from other code</p>'
            f"<p>This book renders the shipped edition <code>{html.escape(Path(str(bundle.get('source'))).name)}"
            f"</code>, made by training code <code>{html.escape(str(prov.get('code_version')))}</code>; this "
            f"checkout's is <code>{html.escape(code_version())}</code>. Where they differ:</p><ul>{changes}</ul>"
            "<p>Every number and figure is what the edition's code computed, not this checkout's. To see what this "
            f"code makes, retrain (<code>mnistgen train all --profile {html.escape(edition[0])}</code>) or build "
            "from a short training here (<code>make book PROFILE=quick</code>).</p></div>")


def _flag_mixed(app, pagename, templatename, context, doctree):
    if not hasattr(app, "mnistgen_pages"):  # read once per build, not once per page
        from mnistgen import pages

        app.mnistgen_pages = pages.book_pages(Path(app.srcdir) / "book" / "generated")
        app.mnistgen_other_code = other_code_notice(app.mnistgen_pages)
    notice = app.mnistgen_other_code + mixed_notice(pagename, app.mnistgen_pages)
    if notice and "body" in context:
        context["body"] = notice + context["body"]


def setup(app):
    app.connect("html-page-context", _drop_thebe)
    app.connect("html-page-context", _flag_mixed)
    app.connect("builder-inited", _check_widgets)
    app.connect("build-finished", _copy_widgets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
