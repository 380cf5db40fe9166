"""Strings from archives reach the pages as text (issue 44, item 5).

A results bundle, an edition's parts and every run's manifest come from whoever made the archive,
and the book renders raw HTML and MyST roles. Whatever such a string holds, the Markdown the
chapters display (``report.provenance``, ``report.bundle_notice``) must show it to the reader as
text: no tag, no attribute, no role, no math, no new block. Each page is parsed here by the
parser the book uses (myst-parser, with the extensions of ``_config.yml``) and written to HTML by
docutils, raw HTML enabled as in the book.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mnistgen import report

REPO = Path(__file__).resolve().parents[1]
EXTENSIONS = yaml.safe_load((REPO / "_config.yml").read_text())["parse"]["myst_enable_extensions"]

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "backticks": "a ``` b ` c",
    "newline": "cpu\n<script>alert(2)</script>",
    "role": "{raw}`html <script>alert(3)</script>`",
    "math": "$\\href{javascript:alert(4)}{x}$",
    "link": "[click](javascript:alert(5)) <http://evil.example>",
    "cell": "a | b \\| c",
    "entity": "&lt;script&gt;alert(6)&lt;/script&gt;",
    "html-block": "\n\n<div onmouseover=alert(7)>\n\n",
}
SOURCE = "evil` <b onclick=alert(8)>{raw}`html <svg onload=alert(9)>`.tar.gz"  # a file name: no slash
# The tags of a provenance block's body (paragraphs, bold, code spans, the table, the <details> the
# block writes itself, the blockquote of the other-code warning): no link, no image, no script.
ALLOWED_TAGS = {"main", "p", "strong", "span", "table", "colgroup", "col", "thead", "tbody", "tr", "th", "td",
                "details", "summary", "blockquote"}


def flat(s: str) -> str:
    """What the reader sees of a string pasted into a line: control characters are spaces."""
    return "".join(" " if c in "\n\r\t" else c for c in s)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def render(md: str) -> tuple[str, _Page, list[str]]:
    """The body HTML of ``md`` as the book parses it, the parsed page, and its inline token types."""
    from docutils.core import publish_string
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.docutils_ import Parser
    from myst_parser.parsers.mdit import create_md_parser

    out = publish_string(md, parser=Parser(), writer_name="html5", settings_overrides={
        "myst_enable_extensions": EXTENSIONS, "output_encoding": "unicode", "report_level": 2, "halt_level": 5,
        "warning_stream": False, "embed_stylesheet": False, "stylesheet_path": "", "math_output": "MathJax"})
    body = out[out.index("<main>"):out.index("</main>") + len("</main>")]
    page = _Page()
    page.feed(body)
    tokens = create_md_parser(MdParserConfig(enable_extensions=set(EXTENSIONS)), RendererHTML).parse(md)
    kinds = [t.type for t in tokens] + [c.type for t in tokens for c in (t.children or [])]
    for t in tokens:
        if t.type == "html_block":
            kinds.append(t.content.strip())
    return body, page, kinds


def assert_inert(md: str, payloads: list[str]) -> None:
    body, page, kinds = render(md)
    low = body.lower()
    assert "<script" not in low and "<img" not in low and "<div onmouseover" not in low, body
    for tag, attrs in page.tags:
        assert tag in ALLOWED_TAGS, (tag, body)
        for name, value in attrs:
            assert not name.lower().startswith("on"), (tag, name, body)
            assert "javascript:" not in (value or "").lower(), (tag, name, value, body)
    # no role, no math, no raw HTML but the block's own <details>, no message from a misused role
    assert "myst_role" not in kinds and "math_inline" not in kinds and "html_inline" not in kinds, kinds
    assert [k for k in kinds if k.startswith("<")] in ([], ["<details><summary>The runs behind this page</summary>",
                                                            "</details>"]), kinds
    assert "system-message" not in body and "problematic" not in body, body
    text = " ".join("".join(page.text).split())
    for p in payloads:
        assert " ".join(flat(p).split()) in text, (p, text)


def _hostile_run(root: Path, profile: str, name: str, seed: int, **manifest) -> SimpleNamespace:
    config = {"seed": seed, "epochs": 2, "beta1": 0.5, "device": "cpu", PAYLOADS["img"]: PAYLOADS["role"]}
    m = {"seed": seed, "epochs": 2, "wall_seconds": 3.0, "device": "cpu", "model": "gan",
         "device_name": PAYLOADS["script"], "git_commit": PAYLOADS["backticks"], "config": config, **manifest}
    return SimpleNamespace(path=root / profile / "runs" / name, manifest=m)


def _bundle(other_code: bool) -> dict:
    return {"profile": "quick", "source": f"/tmp/{SOURCE}", "other_code": other_code,
            "changes": [PAYLOADS["newline"], PAYLOADS["img"]] if other_code else [],
            "provenance": {"device_name": PAYLOADS["script"], "device": PAYLOADS["img"],
                           "git_commit": PAYLOADS["backticks"], "code_version": PAYLOADS["role"],
                           "created": PAYLOADS["newline"]}}


@pytest.mark.parametrize("other_code", [False, True])
def test_a_hostile_bundle_notice_is_shown_as_text(other_code):
    md = report.bundle_notice(_bundle(other_code))
    b = _bundle(other_code)
    assert_inert(md, [b["provenance"][k] for k in ("device_name", "device", "git_commit")]
                 + [SOURCE, PAYLOADS["newline"][:10]]
                 + ([PAYLOADS["role"], *b["changes"]] if other_code else []))


def test_a_hostile_bundle_states_its_provenance_and_is_not_taken_for_fact():
    md = report.bundle_notice(_bundle(False))
    assert "the bundle states they were trained on" in md
    assert "checked against the bundle's own SHA-256 sums at import" in md
    assert "mnistgen train all --profile quick --group NAME" in md and "trained nothing" in md
    other = report.bundle_notice(_bundle(True))
    assert "Numbers from other code" in other and "which states it was made by code version" in other


def test_hostile_manifests_and_bundle_reach_the_provenance_block_as_text(tmp_path):
    """Every field of the manifest the block shows, the run ids and the installed bundle's fields."""
    profile = "quick"
    (tmp_path / profile).mkdir()
    (tmp_path / profile / "bundle.json").write_text(json.dumps(_bundle(False)))
    runs = [_hostile_run(tmp_path, profile, "gan-seed0-x", PAYLOADS["newline"]),
            _hostile_run(tmp_path, profile, "gan-seed1-y", PAYLOADS["role"], device=PAYLOADS["entity"],
                         git_commit=PAYLOADS["link"]),
            _hostile_run(tmp_path, profile, "gan-seed0-z", 0, model=PAYLOADS["cell"], epochs=PAYLOADS["math"],
                         config={"beta1": PAYLOADS["html-block"], "seed": 0, "device": "cpu"}),
            _hostile_run(tmp_path, profile, "gan-seed1-w", 1, model=PAYLOADS["cell"],
                         config={"beta1": 0.9, "seed": 1, "device": "cpu"})]
    md = report.provenance("gan", profile, {}, runs)
    assert "Results bundle." in md and "each run's manifest states" in md
    assert_inert(md, list(PAYLOADS.values()))


def test_shared_provenance_is_what_the_manifests_state():
    run = SimpleNamespace(path=Path("/r/gan-seed0-x"), manifest={
        "seed": 0, "epochs": 2, "wall_seconds": 3.0, "device": "cpu", "model": "gan", "device_name": "x86_64 CPU",
        "git_commit": "abc123def456", "config": {"seed": 0}})
    md = report.provenance("gan", "quick", {}, [run])
    assert "Every run's manifest states it was trained on cpu (x86_64 CPU) from code commit `abc123def456`." in md
    assert_inert(md, ["x86_64 CPU"])


@pytest.mark.parametrize("s", list(PAYLOADS.values()) + ["x86_64", "batch_size = 64", "_a_ *b* \\", "", "``"])
def test_md_text_and_md_code_show_any_string_as_itself(s):
    for md, table in ((report.md_text(s), False), (report.md_code(s), False), (report.md_code(s, table=True), True),
                      (report.md_text(s), True)):
        assert "\n" not in md
        if table:
            md = f"| x |\n|---|\n| {md} |\n"
        assert_inert(md if table else f"pre {md} post\n", [s] if s.strip() else [])


def test_plain_strings_keep_their_markdown():
    """What a real manifest holds reads as before: the golden references hold these."""
    assert report.md_text("x86_64 CPU, 2 torch threads") == "x86_64 CPU, 2 torch threads"
    assert report.md_text("NVIDIA H100 80GB HBM3 (cuda)") == "NVIDIA H100 80GB HBM3 (cuda)"
    assert report.md_code("275bacd91599+dirty") == "`275bacd91599+dirty`"
    assert report.md_code("a`b") == "``a`b``" and report.md_code("`a") == "`` `a ``"
    assert report.md_text("<b>") == "&lt;b&gt;" and report.md_text("a\nb") == "a b"


def test_results_markdown_pastes_its_strings_as_text():
    from mnistgen.report import results_markdown

    yard = {"fid": 1.0, "fid_sd": 0.1, "inception_score": 9.0, "class_accuracy": 0.9}
    m = {"profile": PAYLOADS["script"], "seeds": [0, 1], "yardsticks": [PAYLOADS["img"]],
         "classifiers": {PAYLOADS["img"]: {"test_accuracy": 0.99}},
         "gan": {"by_yardstick": {PAYLOADS["img"]: yard}, "inception_score": 8.0, "parzen_ll": 200.0,
                 "top_class_share": 0.2},
         "gan_choice": {"beta1": PAYLOADS["role"], "batch_size": PAYLOADS["newline"]},
         "real": {"by_yardstick": {PAYLOADS["img"]: yard}, "inception_score": 9.5, "parzen_ll": 300.0},
         "gan_sweep": [{"beta1": PAYLOADS["cell"], "batch_size": 64, "epochs": PAYLOADS["math"], "fid": 1.0}],
         "vae_iwae": [{"objective": PAYLOADS["link"], "k": PAYLOADS["backticks"], "epochs": 1, "seeds": [0],
                       "test_nll": 90.0}]}
    assert_inert(results_markdown(m), [PAYLOADS[k] for k in ("script", "img", "role", "newline", "cell", "math",
                                                             "link", "backticks")])


def test_a_table_whose_caption_quotes_code_is_a_numbered_table():
    """The page on how the edition was made showed its verify table's fence as text: the caption
    quoted `mnistgen edition verify`, and a backtick fence's info string may hold no backtick."""
    md = report.table_block("tab-x", "`mnistgen edition verify` as measured.", ["group", "verdict"],
                            [["gan k=5", "equal"]])
    body, page, _ = render(md)
    assert "{table}" not in body and "```" not in body
    assert any(tag == "table" for tag, _ in page.tags)
    assert any(tag == "caption" for tag, _ in page.tags) and "mnistgen edition verify" in "".join(page.text)
    plain = report.table_block("tab-y", "Plain caption.", ["a"], [["1"]])
    assert plain.startswith("```{table} Plain caption.")  # other tables' glued text stays as it was
