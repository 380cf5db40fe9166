"""Sphinx extension: the built book works offline, with what its pages need and nothing else.

1. Jupyter Book v1 always loads sphinx-thebe (live code cells, which need a Binder server). Its
   inline configuration script is added twice, which browsers report as the console error
   "Identifier 'THEBE_JS_URL' has already been declared", and it names a CDN. This book has no
   live cells, so both the inline script and sphinx-thebe.js are dropped from every page.
2. The interactive figures' weights (src/mnistgen/widgets.py): every weights script a rendered
   chapter names (``data-src="widgets/<profile>/<name>.js"``) is copied from the results folder
   into ``_static/widgets/``. A missing one stops the build before anything is written, naming
   the file and the chapter to render, instead of a page whose figure cannot load.
"""

from __future__ import annotations

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


def setup(app):
    app.connect("html-page-context", _drop_thebe)
    app.connect("builder-inited", _check_widgets)
    app.connect("build-finished", _copy_widgets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
