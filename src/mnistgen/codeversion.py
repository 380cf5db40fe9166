"""Which code made a number: a hash of the source that shapes training (and, apart, metrics).

The version is a hash of the *code*, not of its comments: each file's text with its comments and
docstrings cut out, its blank lines and trailing spaces dropped (``normalised_source``). Adding a
comment to ``steps.py`` keeps every run id, cache key and shipped edition; changing a statement,
even its layout, changes them. The cut is made at the positions Python's own tokenizer (comments)
and parser (docstrings) report, on the source text itself, so the result is the same under every
Python that reads the file alike (``ast.unparse`` would not be: its output changes between releases).

Versions published before this scheme (it hashed the raw bytes) keep their names: ``PUBLISHED``
maps the normalised hash of the tree they were made by to the name it was published under, so
the runs, caches and parts that carry that name stay this code's without being rewritten (a new
name would re-key every run id and metric cache of the shipped edition, and those caches cannot
be re-keyed without recomputing them). tests/test_codeversion.py rebuilds the mapping from the
git tree the paper edition was trained by.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import threading
import tokenize
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# Source files whose change changes what training produces, its history included: the loop and
# its pieces, the GPU path, and the metrics recorded during training (the sweep picks from them).
# Plots, the CLI, caching and the evaluation of finished runs do not.
TRAINING_SOURCES = ("data.py", "losses.py", "train.py", "state.py", "steps.py", "schedules.py", "graphs.py",
                    "evaluators.py", "metrics.py", "optim.py", "numerics.py", "models")

# normalised hash -> the name it was published under by the raw-bytes hash (commit 84465ea's tree:
# the training modules, and the metric modules of evaluate.METRIC_SOURCES).
PUBLISHED = {
    "c401a5155ca6": "2f3968d20bd6",
    "9571471de059": "7587c6c0033f",
}
# CPython 3.11 keeps ast.parse's recursion count in the interpreter's ast state, which its threads
# share: two threads parsing at once (tasks of a threaded Dask worker computing run ids; a finaliser
# run by the garbage collector can hand over the GIL mid-parse) fail at random with "SystemError: AST
# constructor recursion depth mismatch" (python/cpython#106905 and the reports around it; CI met it
# in tests/test_executor.py). So parses here take turns.
_PARSE = threading.Lock()


@functools.lru_cache(maxsize=256)  # a pure function of the text; run ids ask for the same files often
def normalised_source(text: str) -> str:
    """``text`` (a Python module) without comments, docstrings, blank lines and trailing spaces;
    what lies inside any other string, blank lines and trailing spaces included, is kept.

    A file Python cannot parse is returned as it is, so that it still has a version (and fails
    where it is imported, with Python's own message)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # the line ends ast and tokenize count
    try:
        with _PARSE:
            tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, tokenize.TokenError, ValueError):
        return text
    lines = text.split("\n")
    # per line: whether its end lies inside a string (keep its trailing spaces), and whether it lies
    # wholly inside one (keep it even when blank)
    in_string = [False] * len(lines)
    inner = [False] * len(lines)
    for t in tokens:
        if t.start[0] < t.end[0] and t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
            for i in range(t.start[0] - 1, t.end[0] - 1):
                in_string[i] = True
            for i in range(t.start[0], t.end[0] - 1):
                inner[i] = True

    def char_col(line: int, byte_col: int) -> int:  # ast counts UTF-8 bytes, str slicing characters
        return len(lines[line - 1].encode()[:byte_col].decode(errors="ignore"))

    cuts: list[tuple[int, int, int, int]] = []  # (line, col, end line, end col): 1-based lines, characters
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                end_line = first.end_lineno or first.lineno
                cuts.append((first.lineno, char_col(first.lineno, first.col_offset), end_line,
                             char_col(end_line, first.end_col_offset or 0)))
    cuts += [(t.start[0], t.start[1], t.end[0], t.end[1]) for t in tokens if t.type == tokenize.COMMENT]
    # cut from the end so that earlier positions stay valid; a cut line takes the flags of its tail
    for line, col, end_line, end_col in sorted(cuts, reverse=True):
        head, tail = lines[line - 1][:col], lines[end_line - 1][end_col:]
        lines[line - 1:end_line] = [head + tail]
        in_string[line - 1:end_line] = [in_string[end_line - 1]]
        inner[line - 1:end_line] = [False]
    kept = [s if keep_end else s.rstrip() for s, keep_end, keep in zip(lines, in_string, inner)
            if keep or s.strip()]
    return "\n".join(kept) + "\n"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's normalised source."""
    return hashlib.sha256(normalised_source(path.read_text(encoding="utf-8")).encode()).hexdigest()


def source_files(sources: tuple[str, ...], root: Path | None = None) -> list[Path]:
    """The ``.py`` files of ``sources`` (files or folders of the package at ``root``, default this
    one), in a fixed order."""
    root = root or PACKAGE_DIR
    out: list[Path] = []
    for name in sources:
        p = root / name
        out += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return out


def code_version(sources: tuple[str, ...] = TRAINING_SOURCES, root: Path | None = None) -> str:
    """The version of the code in ``sources`` (of the package at ``root``, default this one): 12 hex
    digits of a hash over their normalised source (or the name ``PUBLISHED`` gives that hash)."""
    root = root or PACKAGE_DIR
    h = hashlib.sha256()
    for f in source_files(sources, root):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(normalised_source(f.read_text(encoding="utf-8")).encode())
    digest = h.hexdigest()[:12]
    return PUBLISHED.get(digest, digest)
