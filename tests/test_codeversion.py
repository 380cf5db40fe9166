"""The training-code version is a hash of the code, not of its comments (codeversion.py), and the
shipped edition's versions, named by the old raw-bytes hash, are the same trees' under the new one."""

import ast
import hashlib
import shutil
import subprocess
import threading
import time

import pytest

from mnistgen import codeversion, evaluate
from mnistgen.codeversion import normalised_source

from conftest import REPO

EDITION_COMMIT = "84465ea"  # the last part of the paper edition's first 16 (training code 2f3968d20bd6)


def test_comments_docstrings_and_blank_lines_are_cut_and_code_is_kept():
    src = ('"""Module docstring."""\n\nimport os  # why\n\n\nclass A:\n    """Class doc,\n    two lines."""\n'
           '    x = "# not a comment"\n\n    def f(self):  \n        \'\'\'f doc\'\'\'\n        return 1  # one\n')
    assert normalised_source(src) == ('import os\nclass A:\n    x = "# not a comment"\n    def f(self):\n'
                                      '        return 1\n')
    # a string that is not the first statement is code, not a docstring
    assert normalised_source('def f():\n    x = 1\n    "kept"\n') == 'def f():\n    x = 1\n    "kept"\n'
    # what changes behaviour changes the text: a statement, an operand, an indent
    base = "def f(a):\n    return a + 1\n"
    for other in ("def f(a):\n    return a + 2\n", "def f(a):\n    a = -a\n    return a + 1\n",
                  "def f(a):\n    return a  + 1\n"):
        assert normalised_source(other) != normalised_source(base)
    assert normalised_source("x = (\n") == "x = (\n"  # unparsable: kept as it is, still hashed


@pytest.mark.parametrize("a, b", [
    # ast counts columns in UTF-8 bytes: the cut after a non-ASCII docstring must not eat code
    ('def f():\n    """éééé"""; x = 10\n', 'def f():\n    """éééé"""; z = 10\n'),
    # a form feed is a line end to str.splitlines, not to Python
    ("\x0c\nabcdefgh = 1\n", "\x0c\nabcdefgX = 1\n"),
    # inside a string, blank lines and trailing spaces are data
    ('x = """a\n\nb"""\n', 'x = """a\nb"""\n'),
    ('x = """a  \nb"""\n', 'x = """a\nb"""\n'),
])
def test_programs_that_differ_normalise_differently(a, b):
    assert normalised_source(a) != normalised_source(b)
    assert "x = 10" in normalised_source(a) or "abcdefgh" in normalised_source(a) or '"""' in normalised_source(a)


def test_windows_line_ends_and_a_docstring_only_body():
    assert normalised_source("x = 1\r\ny = 2 # c\r\n") == "x = 1\ny = 2\n"
    assert normalised_source('def f():\n    """doc\n    more"""\n') == "def f():\n"


def test_threads_never_parse_at_once(monkeypatch):
    """Run ids are computed by the tasks of a threaded Dask worker, and Python 3.11's ast.parse fails
    at random when two threads parse at once (CI: "SystemError: AST constructor recursion depth
    mismatch"). Every parse is made slow here, so that overlapping ones would be seen."""
    inside, overlaps, real_parse = [0], [], ast.parse

    def slow_parse(*args, **kwargs):
        inside[0] += 1
        overlaps.append(inside[0])
        time.sleep(0.01)  # hands the GIL to the other threads
        try:
            return real_parse(*args, **kwargs)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(ast, "parse", slow_parse)
    texts = [f"x = {i}  # thread {k}\n" for k in range(4) for i in range(5)]  # distinct: no cached answer
    threads = [threading.Thread(target=lambda k=k: [normalised_source(t) for t in texts[k::4]]) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == len(texts) and max(overlaps) == 1


def test_a_comment_keeps_the_version_and_a_statement_changes_it(tmp_path):
    copy = tmp_path / "pkg"
    shutil.copytree(codeversion.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    ours = codeversion.code_version()
    assert codeversion.code_version(root=copy) == ours
    steps = copy / "steps.py"
    text = steps.read_text()
    steps.write_text("# a comment at the top\n" + text.replace("\n\n", '\n\n# and one between\n', 1) + "\n\n")
    assert codeversion.code_version(root=copy) == ours
    steps.write_text(text + "\nX = 1\n")
    assert codeversion.code_version(root=copy) != ours
    steps.write_text(text)
    (copy / "models" / "extra.py").write_text("Y = 2\n")  # a new file in a hashed folder
    assert codeversion.code_version(root=copy) != ours


def _tree_at(commit: str, dest):
    """The package's source at ``commit`` (git's objects), or skip where this clone lacks the commit."""
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO, capture_output=True).returncode:
        pytest.skip(f"commit {commit} is not in this clone (a shallow clone): the mapping cannot be rebuilt")
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "src/mnistgen"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        out = dest / name.removeprefix("src/mnistgen/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(subprocess.run(["git", "show", f"{commit}:{name}"], cwd=REPO, capture_output=True,
                                       check=True).stdout)
    return dest


def _raw_version(sources, root):
    """The version as it was computed before the normalisation: over the files' bytes."""
    h = hashlib.sha256()
    for f in codeversion.source_files(sources, root):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


@pytest.mark.parametrize("sources, published", [(codeversion.TRAINING_SOURCES, "2f3968d20bd6"),
                                                (evaluate.METRIC_SOURCES, "7587c6c0033f")])
def test_the_shipped_edition_keeps_its_version_under_the_normalised_hash(tmp_path, sources, published):
    """The tree the paper edition was trained and measured by had these raw-hash versions; its
    normalised hash is the one PUBLISHED names so, and this checkout's code is that tree's."""
    tree = _tree_at(EDITION_COMMIT, tmp_path / "tree")
    assert _raw_version(sources, tree) == published
    h = hashlib.sha256()
    for f in codeversion.source_files(sources, tree):
        h.update(f.relative_to(tree).as_posix().encode())
        h.update(normalised_source(f.read_text()).encode())
    assert codeversion.PUBLISHED[h.hexdigest()[:12]] == published
    assert codeversion.code_version(sources, root=tree) == published == codeversion.code_version(sources)
