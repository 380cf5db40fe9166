"""Sphinx extension: keep the built book free of scripts it does not use.

Jupyter Book v1 always loads sphinx-thebe (live code cells, which need a Binder server). Its
inline configuration script is added twice, which browsers report as the console error
"Identifier 'THEBE_JS_URL' has already been declared", and it names a CDN. This book has no live
cells, so both the inline script and sphinx-thebe.js are dropped from every page.
"""

from __future__ import annotations


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    def keep(js) -> bool:
        filename = getattr(js, "filename", js) or ""
        body = (getattr(js, "attributes", {}) or {}).get("body", "")
        return "sphinx-thebe" not in str(filename) and "THEBE_JS_URL" not in str(body)
    context["script_files"] = [js for js in scripts if keep(js)]


def setup(app):
    app.connect("html-page-context", _drop_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
