"""Rerunning a chapter as papermill users do (issue 43): the chapters' parameters checked the same way
by `mnistgen render` and by the chapter itself after papermill's injection; the paired notebooks;
which page a render replaced, and a book that says it is mixed."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import jupytext
import pytest

from conftest import REPO
from mnistgen import chapters, pages
from mnistgen.chapters import CHAPTERS, ParameterError


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_each_chapters_parameters_cell_names_exactly_the_parameters_checked_for_it(name):
    ch = CHAPTERS[name]
    assert set(chapters.notebook_defaults(ch)) == set(ch.fields) | {"profile"}


@pytest.mark.parametrize("stem", [c.stem for c in CHAPTERS.values()])
def test_the_paired_notebooks_papermill_users_open_are_the_chapters_as_written(stem):
    """papermill reads .ipynb: each chapter's paired notebook is committed and holds the .py's cells."""
    py, ipynb = REPO / "notebooks" / f"{stem}.py", REPO / "notebooks" / f"{stem}.ipynb"
    assert ipynb.is_file(), f"{ipynb} is missing: run `jupytext --sync notebooks/*.py`"
    a, b = jupytext.read(py), jupytext.read(ipynb)
    cells = [[(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells] for nb in (a, b)]
    assert cells[0] == cells[1], f"{ipynb} differs from {py}: run `jupytext --sync notebooks/*.py`"
    assert all(not c.get("outputs") for c in b.cells if c.cell_type == "code"), f"{ipynb} holds outputs"


def test_a_misspelt_name_is_refused_with_the_nearest_valid_one_and_only_the_chapters_parameters():
    with pytest.raises(ParameterError) as e:
        chapters.validate("gan", "paper", {"epoch": 2})
    msg = str(e.value)
    assert "has no parameter(s) ['epoch']" in msg and "(did you mean 'epochs'?)" in msg
    # the chapter's own parameters, with the profile's values; nothing the chapter does not take
    assert "epochs (default: profile paper's 300" in msg and "beta1s (default: profile paper's [0.5, 0.9]" in msg
    assert "z_dim" not in msg and "quality_every" not in msg
    with pytest.raises(ParameterError) as e:
        chapters.validate("gan", "quick", {"z_dim": 32})
    assert "'z_dim' is not one of them" in str(e.value) and "z_dim (" not in str(e.value)
    with pytest.raises(ParameterError, match=r"unknown chapter 'gans' \(did you mean 'gan'\?\)"):
        chapters.validate("gans", "quick", {})
    with pytest.raises(ParameterError, match=r"unknown profile 'papr' \(did you mean 'paper'\?\)"):
        chapters.validate("gan", "papr", {})


def test_values_are_checked_by_the_chapters_name_for_them_and_strings_read_as_yaml():
    assert chapters.validate("gan", "quick", {"beta1s": "[0.7]", "epochs": 3}) == {"beta1s": [0.7], "epochs": 3}
    assert chapters.validate("gan", "quick", {"device": "cpu"}) == {"device": "cpu"}  # a string stays one
    with pytest.raises(ParameterError, match=r"chapter 'gan_objective': parameter 'strong_k' = 0 is out of range"):
        chapters.validate("gan_objective", "quick", {"strong_k": 0})  # the GAN's k, named as the chapter names it
    with pytest.raises(ParameterError, match=r"parameter 'beta1s' = 2.0 is out of range"):
        chapters.validate("gan", "quick", {"beta1s": "[0.5, 2]"})
    with pytest.raises(ParameterError, match=r"parameter 'seeds' = 'three' must be a non-empty list"):
        chapters.validate("vae", "quick", {"seeds": "three"})


def test_the_chapter_refuses_a_name_papermill_injected_and_ignores_what_the_kernel_holds():
    import math

    kernel = {"In": [""], "Out": {}, "get_ipython": print, "exit": None, "quit": None, "_": "", "_i1": "x",
              "chapters": chapters, "math": math}
    defaults = chapters.notebook_defaults(CHAPTERS["gan"])
    ns = {**kernel, **defaults, "profile": "smoke", "beta1s": "[0.5]"}
    assert chapters.checked("gan", ns)["beta1s"] == [0.5]
    with pytest.raises(ParameterError, match=r"(?s)has no parameter\(s\) \['batch_size'\].*did you mean 'batch_sizes'"):
        chapters.checked("gan", {**ns, "batch_size": 64})


def _truncated(stem: str, tmp_path: Path) -> Path:
    """The chapter's paired notebook up to its check cell, then a cell that prints what it holds:
    papermill's real injection and the chapter's own first cell, without the chapter's training."""
    nb = jupytext.read(REPO / "notebooks" / f"{stem}.ipynb")
    k = next(i for i, c in enumerate(nb.cells) if "chapters.checked(" in c.source)
    nb.cells = nb.cells[: k + 1] + [jupytext.reads("print(repr(beta1s), repr(epochs))", fmt="py:percent").cells[0]]
    path = tmp_path / f"{stem}.ipynb"
    jupytext.write(nb, path)
    return path


def test_papermill_on_the_published_notebook_refuses_a_misspelt_name_and_takes_a_list(tmp_path):
    import papermill

    src = _truncated("02_gan_experiments", tmp_path)
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(src), str(tmp_path / "bad.ipynb"), parameters={"profile": "smoke", "epoch": 2},
                                   kernel_name="python3", progress_bar=False, cwd=str(REPO))
    assert e.value.ename == "ParameterError" and "did you mean 'epochs'" in e.value.evalue
    # papermill's `-p beta1s "[0.7]"` arrives as a string: read as a list
    papermill.execute_notebook(str(src), str(tmp_path / "good.ipynb"), parameters={"profile": "smoke", "beta1s": "[0.7]"},
                               kernel_name="python3", progress_bar=False, cwd=str(REPO))
    out = json.loads((tmp_path / "good.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for o in out["cells"][-1]["outputs"])
    assert printed.strip() == "[0.7] None"


def _commands(text: str) -> list[list[str]]:
    """Every `make run` / `make book` line of the ```bash blocks in ``text``, split as a shell would."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [shlex.split(line.split("  #")[0]) for b in blocks for line in b.splitlines()
            if line.startswith(("make run", "make book"))]


@pytest.mark.parametrize("doc", ["book/intro.md", "README.md"])
def test_the_rerun_examples_readers_copy_are_valid_as_written(doc):
    """The introduction's `make run NOTEBOOK=gan PARAMS="-p epochs 50 -p seeds [3,4]"` needed training
    the paper edition does not allow; each example now names a chapter, a profile and parameters that
    `mnistgen render` accepts, and a profile that trains (quick) wherever it changes a parameter."""
    from mnistgen.cli import parse_params

    commands = _commands((REPO / doc).read_text())
    assert any(c[:2] == ["make", "run"] for c in commands), doc
    for c in commands:
        args = dict(a.split("=", 1) for a in c[2:] if "=" in a)
        if c[1] == "run":
            params = parse_params([p.split(" ", 1) for p in re.findall(r"-p (\S+ \S+)", args.get("PARAMS", ""))])
            assert params, c
            assert args.get("PROFILE") == "quick", f"{doc}: {c} changes parameters of the shipped edition"
            chapters.validate(args["NOTEBOOK"], args["PROFILE"], params)
        assert args.get("PROFILE", "paper") in ("paper", "quick", "smoke"), c


def test_make_run_says_which_page_it_replaced(tmp_path, monkeypatch, capsys):
    """A rerun replaces the page; render says what it replaced and how to get the edition's page back."""
    import papermill

    from mnistgen import cli

    def fake_execute(src, dst, parameters, **kw):  # papermill's record of what it injected, nothing run
        nb = json.loads(Path(src).read_text())
        nb["metadata"]["papermill"] = {"parameters": parameters}
        Path(dst).write_text(json.dumps(nb))

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    said: list[str] = []
    cli.render("gan", "smoke", {}, tmp_path, say=said.append)
    assert not any("replaced" in s for s in said)
    cli.render("gan", "smoke", {"epochs": "2"}, tmp_path, say=said.append)
    assert "this replaced the page rendered with profile smoke, no overrides" in said[-1] and "make book" in said[-1]
    page = pages.read_page(tmp_path / "02_gan_experiments.ipynb")
    assert page == pages.Page("02_gan_experiments", "smoke", {"epochs": 2})  # YAML-read, as papermill got it
    nb = json.loads((tmp_path / "02_gan_experiments.ipynb").read_text())
    tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
    assert all("remove-cell" in t for t in tags if "parameters" in t)  # the defaults cell is not shown


def test_a_mixed_book_is_flagged_on_every_chapter_and_the_introduction():
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    from offline_book import mixed_notice

    one = {s: pages.Page(s, "paper") for s in ("01_a", "02_b")}
    assert not pages.mixed(one) and mixed_notice("book/generated/02_b", one) == ""
    book = {**one, "02_b": pages.Page("02_b", "quick", {"epochs": 4})}
    assert pages.mixed(book) and pages.majority(book) is not None
    notice = mixed_notice("book/generated/02_b", book)
    assert "A mixed book" in notice and "This page was rendered with profile quick with epochs = 4" in notice
    assert "01_a: profile paper, no overrides" in notice and "make book" in notice
    assert "A mixed book" in mixed_notice("book/generated/01_a", book)
    assert "A mixed book" in mixed_notice("book/intro", book)
    assert mixed_notice("book/references", book) == ""


def test_the_console_says_what_the_built_book_is(tmp_path, monkeypatch, capsys):
    from mnistgen import cli

    def page(stem, **params):
        (tmp_path / f"{stem}.ipynb").write_text(json.dumps({"metadata": {"papermill": {"parameters": params}}}))

    monkeypatch.setattr(pages, "GENERATED_DIR", tmp_path)
    page("01_a", profile="paper")
    page("02_b", profile="paper", epochs=None)  # a None override is the default: the same edition
    cli.main(["pages", "--html", "/b/index.html"])
    assert capsys.readouterr().out == "The report: /b/index.html (profile paper, no overrides, every chapter)\n"
    page("02_b", profile="quick", beta1s=[0.7])
    cli.main(["pages"])
    out = capsys.readouterr().out.splitlines()
    assert "a mixed book" in out[0] and out[1:] == ["  01_a: profile paper, no overrides",
                                                    "  02_b: profile quick with beta1s = [0.7]"]


def test_the_readme_is_a_front_door():
    """Issue 43: 744 lines, most of it benchmark history; now the two commands first, the sections a
    newcomer looks for, at most ~200 lines, and every docs/ file it points to present."""
    text = (REPO / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 200, len(lines)
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).splitlines()
    assert [line.split()[:2] for line in block] == [["make", "book"], ["make", "test"]]
    heads = [line[3:] for line in lines if line.startswith("## ")]
    for wanted in ("Results at a glance", "Rerun a chapter", "I changed the code", "Test one chapter",
                   "Troubleshooting", "Where the rest lives"):
        assert wanted in heads, (wanted, heads)
    from papermill.cli import _resolve_type  # how papermill's command line types a -p value

    runs = [shlex.split(line) for line in text.splitlines() if "papermill notebooks/" in line]
    assert runs, "no papermill recipe"
    for cmd in runs:  # the recipe's chapter and values pass the chapter's own check, as papermill types them
        stem = Path(next(a for a in cmd if a.startswith("notebooks/"))).stem
        name = next(c.name for c in CHAPTERS.values() if c.stem == stem)
        params = {cmd[i + 1]: _resolve_type(cmd[i + 2]) for i, a in enumerate(cmd) if a == "-p"}
        chapters.validate(name, params.pop("profile"), params)
    for target in re.findall(r"\]\((docs/[\w.-]+)\)", text):
        assert (REPO / target).is_file(), target
