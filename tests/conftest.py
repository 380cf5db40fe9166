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
# The nbval references (tests/golden) were computed with two torch threads (`make golden` pins it).
# A training's last bits depend on the thread count (how reductions are split), training's chaos
# grows them, and the smoke VGG yardstick amplifies them past any sane tolerance (one thread: a
# VGG-space FID of 1.35 against 1.42). So the notebook kernels always get two threads, on a machine
# of any core count and under any OMP_NUM_THREADS (the matrix's other settings, the vector units,
# reach them unchanged): a reference is reproducible only at the thread count that made it.
REFERENCE_THREADS = "2"
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
    nbval_tolerance.pin_kernel_threads(REFERENCE_THREADS)
