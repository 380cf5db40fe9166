import os
import tempfile
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

# Every run a test trains (in this process or in an nbval kernel, which inherits the
# environment) goes to a fresh folder: tests never reuse or overwrite the book's results/.
os.environ.setdefault("MNISTGEN_RESULTS", tempfile.mkdtemp(prefix="mnistgen-test-results-"))
# Unit tests hold on any thread count (their oracles are exact or in float64); by default they use
# two, as CI does. `make test-matrix` sets OMP_NUM_THREADS to other counts on purpose.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
# The nbval references (tests/golden) hold numbers that passed through training, whose last bits
# depend on how the machine rounds, and training's chaos grows them: the smoke VGG yardstick's
# small FIDs moved by 0.03 (1.38 -> 1.35, beyond the tolerance) on one thread, and again under
# torch's unvectorised kernels (ATEN_CPU_CAPABILITY=default, measured by `make test-matrix`).
# So the notebook kernels compute the way the references were computed (`make golden` uses the
# same settings), on any machine and whatever the matrix sets for the rest of the suite: two
# threads, and on a CPU with AVX2 (x86-64 since 2013) the AVX2 code paths of torch's own kernels,
# of MKL (MKL_CBWR=AVX2: Intel's conditional numerical reproducibility, the same results on any
# CPU that has AVX2) and of oneDNN. Unit tests are not pinned: their oracles hold by construction.
REFERENCE_ENV = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
_CPUINFO = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
if " avx2" in _CPUINFO:
    REFERENCE_ENV.update({"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "MKL_CBWR": "AVX2",
                          "ONEDNN_MAX_CPU_ISA": "AVX2"})
# The figures the reference notebooks glue, as this session's code draws them (nbval keeps them
# here as it runs the notebooks; tests/test_book.py checks these, not the committed PNGs).
FRESH_FIGURES = Path(tempfile.mkdtemp(prefix="mnistgen-fresh-figures-"))

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MNISTGEN_DATA", REPO / "data"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The verified MNIST that `make data` materialised (make test depends on it)."""
    from mnistgen.data import verify

    if verify(DATA):
        pytest.fail(f"MNIST under {DATA} is missing or corrupt: run `make data` first")
    return DATA


@pytest.fixture
def float64():
    """Models, draws and losses in float64 for the duration of a test.

    Oracles that compare two computations differing only in rounding run in float64: there a
    rounding difference (~1e-16 relative) cannot flip a ReLU/LeakyReLU branch except with
    negligible probability, so their bounds hold on any CPU (float32's ~1e-7 did flip branches:
    a 2.9e-2 gradient difference on an AVX2 EPYC where the writing machine had seen 4e-4).
    """
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(scope="session")
def mnist_train(data_root):
    from mnistgen.data import load_mnist

    return load_mnist(data_root, train=True)


# nbval compares printed numbers with a tolerance (another CPU rounds the last digit differently).
# (A GPU machine without the notebook stack runs the other tests: there is no nbval to wrap.)
import importlib.util  # noqa: E402

import nbval_tolerance  # noqa: E402

if importlib.util.find_spec("nbval") is not None:
    nbval_tolerance.install(FRESH_FIGURES)
    nbval_tolerance.pin_kernel_env(REFERENCE_ENV)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The HTML book over the reference notebooks (tests/bookbuild.py), built once per session."""
    import bookbuild

    try:
        return bookbuild.build(tmp_path_factory.mktemp("book"))
    except FileNotFoundError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def server(built_book):
    """The built book served over HTTP on a free local port: its base URL."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


# Per-test timeouts (pytest-timeout; the default is `timeout` in pyproject.toml, method `signal`, so
# a deadlocked test, e.g. one waiting on a run folder's flock in runs.exclusive, fails with its
# traceback instead of hanging CI). Items whose legitimate work exceeds the default get more:
# - nbval's notebook cells: nbval's own cell timeout (--nbval-cell-timeout) plus its kernel start-up
#   timeout plus a minute, so nbval's own timeout (which interrupts the kernel and reports the
#   cell's traceback) always fires first;
# - tests marked slow or browser, and those using the book or the smoke bundle (a session or module
#   fixture's set-up counts toward the first test that uses it: run alone, the book executes the
#   reference chapters, then jupyter-book under its own 900 s bound): twice that bound.
# A timeout given on the command line or in PYTEST_TIMEOUT (e.g. --timeout 0) applies unchanged.
HEAVY_TIMEOUT = 1800
HEAVY_FIXTURES = {"built_book", "server", "smoke_bundle", "assembled"}


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("timeout") or config.getvalue("timeout") is not None \
            or os.environ.get("PYTEST_TIMEOUT"):
        return
    default = float(config.getini("timeout") or 0)
    if default <= 0:
        return
    nbval_cell = None
    if config.pluginmanager.hasplugin("nbval"):
        nbval_cell = (float(config.getoption("nbval_cell_timeout")) + float(config.getoption("nbval_kernel_startup_timeout"))
                      + 60)
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue  # the test's own
        if type(item).__name__ == "IPyNbCell" and nbval_cell is not None:
            item.add_marker(pytest.mark.timeout(nbval_cell))
        elif (item.get_closest_marker("slow") or item.get_closest_marker("browser")
              or HEAVY_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.timeout(max(default, HEAVY_TIMEOUT)))
