"""The tolerance nbval compares printed numbers with: close numbers pass, anything else still fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbval_tolerance import numbers_close, snap

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("ref, new", [
    ("-357.28", "-357.29"),      # the last digit on another CPU (the reported failure)
    ("0.56", "0.57"),            # one unit in the last place of a small number
    ("47.70", "47.71"),
    ("1.0", "1.0"),
    ("231.31", "231.9"),         # within 0.5% of the reference
    ("2.5e-05", "2.6e-05"),
    ("−245.05", "-245.06"),      # the typographic minus the tables print
])
def test_close_numbers_match(ref, new):
    assert numbers_close(ref, new)


@pytest.mark.parametrize("ref, new", [
    ("15", "16"),                # integers (epochs, counts) are exact below 200
    ("0", "1"),
    ("0.56", "0.60"),
    ("47.70", "48.10"),
    ("-357.28", "357.28"),       # a sign is part of the number
    ("1.0", "2.0"),
])
def test_distant_numbers_differ(ref, new):
    assert not numbers_close(ref, new)


def test_snap_only_replaces_when_text_and_every_number_agree():
    ref = "gan {'fid': 47.7, 'parzen_ll': -357.28}\n"
    assert snap(ref, "gan {'fid': 47.71, 'parzen_ll': -357.29}\n") == ref
    # one number out of tolerance: the whole string stays as computed, so nbval shows the diff
    far = "gan {'fid': 49.9, 'parzen_ll': -357.29}\n"
    assert snap(ref, far) == far
    # other words around the same numbers: not the same output
    other = "vae {'fid': 47.7, 'parzen_ll': -357.28}\n"
    assert snap(ref, other) == other
    # another count of numbers
    more = "gan {'fid': 47.7, 'parzen_ll': -357.28, 'x': 1}\n"
    assert snap(ref, more) == more
    # a table row: cell separators and words must match exactly
    row = "| GAN | 47.70 | 1.00 | -357 ± 1 |"
    assert snap(row, "| GAN | 47.69 | 1.00 | -357 ± 1 |") == row
    assert snap(row, "| VAE | 47.69 | 1.00 | -357 ± 1 |") != row


def test_a_measurement_rounded_to_whole_units_may_round_the_other_way():
    """"mean ± sd" is a float rounded to the sd's precision: another CPU can round it one unit off,
    on either side of the ±; an integer that is not beside a ± (a count) still must match."""
    assert snap("GAN Parzen -336 ± 19 nats", "GAN Parzen -335 ± 18 nats") == "GAN Parzen -336 ± 19 nats"
    assert snap("-336 ± 19", "-341 ± 19") == "-341 ± 19"  # beyond 0.5 % and two units: a real change
    assert snap("15 epochs, -336 ± 19", "16 epochs, -336 ± 19") == "16 epochs, -336 ± 19"


def _notebook(printed_ref: str, code_prints: str) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": "c1", "execution_count": 1, "metadata": {},
                       "source": f"print('parzen', {code_prints})",
                       "outputs": [{"output_type": "stream", "name": "stdout", "text": f"parzen {printed_ref}\n"}]}]}


@pytest.mark.slow
@pytest.mark.parametrize("computed, passes", [("-357.29", True), ("-357.28", True), ("-359.9", False)])
def test_nbval_itself_uses_the_tolerance(tmp_path, computed, passes):
    """A real nbval run: a reference printed -357.28; the kernel prints ``computed``."""
    (tmp_path / "check.ipynb").write_text(json.dumps(_notebook("-357.28", computed)))
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport nbval_tolerance\nnbval_tolerance.install()\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                        "-o", "addopts=", "--rootdir", str(tmp_path), str(tmp_path / "check.ipynb")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert (r.returncode == 0) == passes, r.stdout[-2000:] + r.stderr[-2000:]
