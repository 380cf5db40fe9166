"""Numbers in the nbval reference notebooks are compared with a tolerance, not digit for digit.

A notebook prints floats as the CPU that ran it computed them: another CPU model (other BLAS or
oneDNN kernels, other vector units) or another thread count rounds the last digit differently,
and a few training steps later the difference has grown (a newcomer's AMD CPU printed a Parzen
log-likelihood of -357.29 where the reference holds -357.28). So before nbval compares a cell's
outputs, every text output is split into its numbers and the text between them; where the text
is identical and each number is within tolerance of the reference's, the reference's digits are
put into the new output. Anything else (other words, another count of numbers, one number out
of tolerance) is left as it is, and nbval reports the difference as usual.

The tolerance of a printed number ``ref`` against a new value ``new``:

    |new - ref| <= RTOL * |ref| + ULPS * (one unit in ref's last printed decimal place)

with the unit counted only for numbers printed with a decimal point or exponent, or beside a
``±`` (a measurement "mean ± sd" rounded to the sd's precision: "-336 ± 19" is a float rounded to
whole units, and on another CPU it rounds to "-335 ± 18"). Any other integer (an epoch count, a
seed, a number of images) must match exactly up to ``RTOL * |ref|``, which is below 1 for every
integer under 1/RTOL = 200. The values printed by the chapters are metrics of
tiny smoke runs (FID, Parzen, NLL, D(x)); a change of code moves them by far more than this.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

RTOL = 5e-3
ULPS = 2
# A number as notebooks print them: optional sign, digits, optional decimals, optional exponent.
NUMBER = re.compile(r"[-+−]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _value(token: str) -> float:
    return float(token.replace("−", "-"))


def _unit(token: str, measured: bool = False) -> float:
    """One unit in the last printed place (0 for integers that are not ``measured``: no extra slack)."""
    mantissa, _, exponent = token.lower().partition("e")
    if "." not in mantissa and not exponent and not measured:
        return 0.0
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def numbers_close(ref: str, new: str, rtol: float = RTOL, ulps: float = ULPS, measured: bool = False) -> bool:
    a, b = _value(ref), _value(new)
    return abs(b - a) <= rtol * abs(a) + ulps * _unit(ref, measured)


def _beside_pm(text: list[str], i: int) -> bool:
    """Whether number ``i`` of a split text stands beside a ``±`` (one side of "mean ± sd")."""
    return text[i].rstrip().endswith(("±", "+-")) or text[i + 1].lstrip().startswith(("±", "+-"))


def snap(ref: str, new: str, rtol: float = RTOL, ulps: float = ULPS) -> str:
    """``new`` with its numbers replaced by ``ref``'s where all of them agree within tolerance.

    Returns ``new`` unchanged unless the text between the numbers is identical and every pair of
    numbers is close, so a real difference still shows in nbval's report.
    """
    if ref == new:
        return new
    ref_text, new_text = NUMBER.split(ref), NUMBER.split(new)
    ref_nums, new_nums = NUMBER.findall(ref), NUMBER.findall(new)
    if ref_text != new_text or len(ref_nums) != len(new_nums):
        return new
    if all(numbers_close(r, n, rtol, ulps, _beside_pm(ref_text, i)) for i, (r, n) in enumerate(zip(ref_nums, new_nums))):
        return ref
    return new


def _snap_output(cell: Any, test: Any, ref: Any) -> Any:
    """A copy of one output (a NotebookNode) with its text snapped to the reference's."""
    import nbformat

    if test.get("output_type") != ref.get("output_type"):
        return test
    out = nbformat.from_dict(test)
    for key, value in test.items():
        if key == "data" and isinstance(ref.get("data"), dict):
            out["data"] = nbformat.from_dict({
                k: snap(cell.sanitize(ref["data"][k]), cell.sanitize(v))
                if isinstance(v, str) and isinstance(ref["data"].get(k), str) else v
                for k, v in value.items()})
        elif key == "text" and isinstance(value, str) and isinstance(ref.get(key), str):
            out[key] = snap(cell.sanitize(ref[key]), cell.sanitize(value))
    return out


GLUED_PNG = "application/papermill.record/image/png"


def stash_glued_figures(test: list[dict[str, Any]], folder: Path) -> None:
    """Write every figure a freshly executed cell glued to ``folder/<name>.png``."""
    for out in test:
        name = out.get("metadata", {}).get("scrapbook", {}).get("name")
        png = out.get("data", {}).get(GLUED_PNG)
        if name and png:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.png").write_bytes(base64.b64decode(png))


def install(figures: Path | None = None) -> None:
    """Wrap nbval's output comparison so numbers are compared with the tolerance above.

    nbval coalesces each cell's streams before it compares, so outputs pair up by position.
    ``figures``: also keep the PNGs each notebook's cells glue as this run drew them, under
    ``figures/<notebook stem>/`` (the figure tests check those, not the committed references).
    """
    from nbval import plugin

    if getattr(plugin.IPyNbCell.compare_outputs, "_tolerant", False):
        return
    original = plugin.IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        if figures is not None:
            stash_glued_figures(test, figures / Path(str(self.parent.fspath)).stem)
        if len(test) == len(ref):
            test = [_snap_output(self, t, r) for t, r in zip(test, ref)]
        return original(self, test, ref, skip_compare)

    compare_outputs._tolerant = True
    plugin.IPyNbCell.compare_outputs = compare_outputs


def pin_kernel_env(settings: dict[str, str]) -> None:
    """Start nbval's kernels with ``settings`` in their environment, whatever this process was given."""
    from nbval import kernel

    if getattr(kernel.start_new_kernel, "_pinned", False):
        return
    original = kernel.start_new_kernel

    def start_new_kernel(*args, **kwargs):
        return original(*args, env={**os.environ, **settings}, **kwargs)

    start_new_kernel._pinned = True
    kernel.start_new_kernel = start_new_kernel
