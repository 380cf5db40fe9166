"""The interactive figures against an oracle: the Python model.

Each widget (src/mnistgen/widgets.py, book/_static/mnistgen-widgets.js) is driven through its page
API in headless Chromium (set z, the class, the latent point), its canvas read back, and every
pixel compared with the PyTorch model's output for the same input, mapped to grey levels the way
the figures map it. The bound, 1 grey level, holds by construction: the runtime multiplies the
same float32 weights in float64 through continuous activations, so it differs from PyTorch's
float32 pass by ~1e-6 of a level before the canvas rounds to an integer (at most half a level).
Perturbed weights (one output bias, one layer transposed) must exceed it.

The first tests build a page of their own (seeded, untrained models; opened from file://), so
they need no book; the last open the chapters of the test book (tests/bookbuild.py) from
file://, compare each widget with the run it names, move its slider or pointer, and record the
widgets' page weight and milliseconds per image (tests/artifacts/widgets.json, for the README).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bookbuild import CHROMIUM, launch
from conftest import REPO

from mnistgen import widgets
from mnistgen.models import VAE, ConditionalGenerator, Generator
from mnistgen.plots import lerp, slerp

RUNTIME = REPO / "book" / "_static" / "mnistgen-widgets.js"
ARTIFACTS = REPO / "tests" / "artifacts"
BOUND = 1.0  # grey levels: 0.5 of canvas rounding + float error (see the module docstring)

pytestmark = pytest.mark.browser


def _require_chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")


def _models():
    torch.manual_seed(0)
    G, C, V = Generator(), ConditionalGenerator(), VAE(z_dim=2)
    with torch.no_grad():  # trained-like scales: a fresh net's outputs sit near 0 and hide defects
        for m in (G, C, V):
            for p in m.parameters():
                p.mul_(3.0)
    return G.eval(), C.eval(), V.eval()


def _page(folder: Path, exports: list[widgets.Exported], profile: str = "t") -> str:
    """A page like a chapter's: the runtime, the widgets' divs, weights under _static/widgets/."""
    static = folder / "_static"
    (static / "widgets" / profile).mkdir(parents=True, exist_ok=True)
    shutil.copy(RUNTIME, static / RUNTIME.name)
    for e in exports:
        shutil.copy(e.path, static / "widgets" / profile / e.path.name)
    page = folder / "page.html"
    page.write_text(f'<!doctype html><html data-content_root="./"><head><script src="_static/{RUNTIME.name}">'
                    f'</script></head><body>{"".join(e.html for e in exports)}</body></html>')
    return page.as_uri()


def _export_all(G, C, V, folder: Path, profile: str = "t") -> list[widgets.Exported]:
    run = SimpleNamespace(path=Path("run-x"), cfg=SimpleNamespace(seed=0, epochs=1))
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 64, generator=gen)
    pts, labels = torch.randn(50, 2, generator=gen).numpy(), np.arange(50) % 10
    return [widgets.interpolation(G, run, profile, z, results_root=folder),
            widgets.digit_picker(C, run, profile, z[:1], results_root=folder),
            widgets.latent_pointer(V, run, profile, pts, labels, results_root=folder)]


@torch.no_grad()
def differences(page, G, C, V) -> dict[str, float]:
    """The largest |canvas - Python| in grey levels, per widget, over a set of inputs."""
    gen = torch.Generator().manual_seed(2)
    out = {}
    page.evaluate("Promise.all(['gan', 'acgan', 'vae'].map(n => mnistgen.ready(n)))")
    worst = 0.0
    for _ in range(3):
        a, b = torch.randn(2, 64, generator=gen)
        page.evaluate("([a, b]) => mnistgen.widgets.gan.setZ(a, b)", [a.tolist(), b.tolist()])
        for path, fn in (("lerp", lerp), ("slerp", slerp)):
            page.evaluate("p => mnistgen.widgets.gan.setPath(p)", path)
            for t in (0.0, 0.3, 1.0):
                page.evaluate("t => mnistgen.widgets.gan.setT(t)", t)
                got = np.array(page.evaluate("mnistgen.widgets.gan.pixels()"), dtype=float)
                want = widgets.to_grey(G(fn(a, b, torch.tensor([t])))[0], (-1, 1)).numpy()
                worst = max(worst, float(np.abs(got - want).max()))
    out["gan"] = worst
    worst = 0.0
    for _ in range(2):
        z = torch.randn(1, 64, generator=gen)
        page.evaluate("z => mnistgen.widgets.acgan.setZ(z)", z[0].tolist())
        for c in range(10):
            page.evaluate("c => mnistgen.widgets.acgan.setClass(c)", c)
            got = np.array(page.evaluate("mnistgen.widgets.acgan.pixels()"), dtype=float)
            want = widgets.to_grey(C(z, torch.tensor([c]))[0], (-1, 1)).numpy()
            worst = max(worst, float(np.abs(got - want).max()))
    out["acgan"] = worst
    worst = 0.0
    for z1, z2 in ((0.0, 0.0), (-2.5, 1.2), (2.9, -2.9), (0.31, 0.77)):
        page.evaluate("([a, b]) => mnistgen.widgets.vae.setPoint(a, b)", [z1, z2])
        got = np.array(page.evaluate("mnistgen.widgets.vae.pixels()"), dtype=float)
        want = widgets.to_grey(torch.sigmoid(V.decode(torch.tensor([[z1, z2]])))[0], (0, 1)).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    out["vae"] = worst
    return out


def _open(p, url):
    browser = launch(p)
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return browser, page, errors


def test_each_widget_draws_what_the_python_model_draws(tmp_path):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    G, C, V = _models()
    url = _page(tmp_path, _export_all(G, C, V, tmp_path))
    with sync_playwright() as p:
        browser, page, errors = _open(p, url)
        diff = differences(page, G, C, V)
        browser.close()
    assert not errors, errors
    assert all(d <= BOUND for d in diff.values()), diff


@pytest.mark.parametrize("defect", ["output bias", "hidden layer transposed"])
def test_the_oracle_catches_perturbed_weights(tmp_path, defect):
    """The page gets the weights of a damaged copy of each model; the comparison with the intact
    models must fail for every widget."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    G, C, V = _models()
    damaged = [type(m)(**kw) for m, kw in ((G, {}), (C, {}), (V, {"z_dim": 2}))]
    for d, m in zip(damaged, (G, C, V)):
        d.load_state_dict(m.state_dict())
        with torch.no_grad():
            linears = [x for x in d.modules() if isinstance(x, widgets.SeedLinear)]
            if defect == "output bias":  # the layer that draws pixels: one pixel's bias
                (d.dec[-1] if isinstance(d, VAE) else linears[-1]).bias[0, 0, 400] += 0.5
            else:  # the 256 x 256 (GAN) or the first decoder layer read the other way round
                sq = next((x for x in linears if x.weight.shape[1] == x.weight.shape[2]), None)
                if sq is not None:
                    sq.weight[0] = sq.weight[0].T.clone()
                else:
                    d.dec[0].weight[0] = d.dec[0].weight[0].flip(0).clone()
        d.eval()
    url = _page(tmp_path, _export_all(*damaged, tmp_path))
    with sync_playwright() as p:
        browser, page, _ = _open(p, url)
        diff = differences(page, G, C, V)
        browser.close()
    assert all(d > BOUND for d in diff.values()), diff


def test_an_unknown_layer_or_a_seed_batch_is_refused():
    from torch import nn

    with pytest.raises(widgets.WidgetError, match="no Softplus layer"):
        widgets.mlp_layers(nn.Sequential(widgets.SeedLinear(2, 3), nn.Softplus()))
    with pytest.raises(widgets.WidgetError, match="holds 3"):
        widgets.mlp_layers(Generator(seeds=3).net)
    run = SimpleNamespace(path=Path("r"), cfg=SimpleNamespace(seed=0, epochs=1))
    with pytest.raises(widgets.WidgetError, match="2-d latent"):
        widgets.latent_pointer(VAE(z_dim=20), run, "t", np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(widgets.WidgetError, match="expected 2 noise vectors of 64"):
        widgets.interpolation(Generator(), run, "t", torch.zeros(1, 64))


# --- the chapters' widgets in the test book ------------------------------------------------

CHAPTER_WIDGETS = {"gan": "02_gan_experiments", "acgan": "04_acgan", "vae": "03_vae"}


def _run_model(spec: dict):
    """The model of the run a widget names, from its checkpoint in this session's results."""
    from mnistgen.config import make_config
    from mnistgen.runs import read_checkpoint, run_path
    from mnistgen.state import build_models

    payload = read_checkpoint(run_path(spec["profile"], spec["run"]) / "checkpoint.pt")
    ident = dict(payload["identity"])
    cfg = make_config(ident.pop("model"), **ident)
    key = "vae" if spec["kind"] == "latent_pointer" else "G"
    model = build_models(cfg)[key]
    model.load_state_dict(payload["state"]["models"][key])
    return model.eval()


def test_the_chapters_widgets_run_their_runs_from_file_urls(built_book):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    measured = {}
    runtime_bytes = (built_book / "_static" / RUNTIME.name).stat().st_size
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        models = {}
        for name, stem in CHAPTER_WIDGETS.items():
            page.goto((built_book / "book" / "generated" / f"{stem}.html").as_uri())
            page.evaluate("n => mnistgen.ready(n)", name)
            spec = page.evaluate("n => mnistgen.widgets[n].spec", name)
            models[name] = _run_model(spec)
            weights = built_book / "_static" / "widgets" / spec["profile"] / f"{name}.js"
            # one image drawn (forward pass and canvas), best of three timings of 20
            ms = min(page.evaluate("n => mnistgen.widgets[n].time(20)", name) for _ in range(3))
            measured[name] = {"run": spec["run"], "page_bytes": weights.stat().st_size + runtime_bytes,
                              "ms_per_image": round(ms, 3)}
            root = page.locator(f'.mnistgen-widget[data-widget="{name}"]')
            root.scroll_into_view_if_needed()
            before = page.evaluate("n => mnistgen.widgets[n].pixels()", name)
            if name == "gan":  # the slider, by the mouse: near its right end
                box = root.locator("input[type=range]").bounding_box()
                page.mouse.click(box["x"] + 0.9 * box["width"], box["y"] + box["height"] / 2)
            elif name == "acgan":
                root.locator("button", has_text="7").click()
            else:
                box = root.locator("canvas.mnistgen-pad").bounding_box()
                page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.3 * box["height"])
            after = page.evaluate("n => mnistgen.widgets[n].pixels()", name)
            assert after != before, f"{name}: the image did not change on a slider, button or pointer event"
            if name == "gan":  # the README's picture
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "widget_gan.png"), clip=root.bounding_box())
        # the oracle, widget by widget, on its own page
        diffs = {}
        for name, stem in CHAPTER_WIDGETS.items():
            page.goto((built_book / "book" / "generated" / f"{stem}.html").as_uri())
            page.evaluate("n => mnistgen.ready(n)", name)
            diffs[name] = _chapter_difference(page, name, models[name])
        browser.close()
    assert not errors, errors
    assert all(d <= BOUND for d in diffs.values()), diffs
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "widgets.json").write_text(json.dumps({"budget_bytes": widgets.BUDGET_BYTES, "widgets": measured,
                                                        "max_grey_difference": diffs}, indent=2))


@torch.no_grad()
def _chapter_difference(page, name: str, model) -> float:
    gen = torch.Generator().manual_seed(3)
    if name == "gan":
        a, b = torch.randn(2, 64, generator=gen)
        page.evaluate("([a, b]) => mnistgen.widgets.gan.setZ(a, b)", [a.tolist(), b.tolist()])
        page.evaluate("mnistgen.widgets.gan.setPath('slerp')")
        page.evaluate("mnistgen.widgets.gan.setT(0.5)")
        want = widgets.to_grey(model(slerp(a, b, torch.tensor([0.5])))[0], (-1, 1))
    elif name == "acgan":
        z = torch.randn(1, 64, generator=gen)
        page.evaluate("z => mnistgen.widgets.acgan.setZ(z)", z[0].tolist())
        page.evaluate("mnistgen.widgets.acgan.setClass(4)")
        want = widgets.to_grey(model(z, torch.tensor([4]))[0], (-1, 1))
    else:
        page.evaluate("mnistgen.widgets.vae.setPoint(-0.7, 1.3)")
        want = widgets.to_grey(torch.sigmoid(model.decode(torch.tensor([[-0.7, 1.3]])))[0], (0, 1))
    got = np.array(page.evaluate(f"mnistgen.widgets.{name}.pixels()"), dtype=float)
    return float(np.abs(got - want.numpy()).max())
