"""Interactive figures: a chapter's own model, run in the reader's browser.

The paper's generator is three matrix products (64 -> 256 -> 256 -> 784, ~280,000 multiply-adds
per image) and the d = 2 VAE's decoder two: small enough for plain JavaScript to draw an image
in about a millisecond, with no server, no network and no WebAssembly runtime to ship.

When a chapter renders it calls one of ``interpolation`` (GAN), ``digit_picker`` (AC-GAN) or
``latent_pointer`` (VAE) with the model it describes (seed 0). Each writes that model's float32
weights as a script, ``results/<profile>/widgets/<name>.js``, which registers them with the
runtime (``book/_static/mnistgen-widgets.js``), and returns the HTML the page shows: an empty
``<div>`` that the runtime fills. A script, not a JSON file: a book opened from ``file://`` may
load scripts but Chromium refuses ``fetch()`` of local files. The book's Sphinx extension
(``book/_ext/offline_book.py``) copies the scripts the pages name into ``_static/widgets/`` and
fails the build, naming the file, where one is missing. Without JavaScript the page keeps the
chapter's static figure, which stands beside the widget.

Weights are float32, as trained; the runtime multiplies them in float64. Every layer is a
continuous function (affine maps, LeakyReLU, ReLU, tanh, sigmoid), so the browser's image
differs from PyTorch's float32 forward pass by rounding alone (~1e-6 of a grey level's
1/255), plus at most half a grey level where the canvas rounds to an integer: the widget
oracle's 1-grey-level bound (tests/test_widgets.py) holds by construction on any CPU.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .models import ConditionalGenerator, Generator, SeedLinear, VAE
from .runs import RESULTS_ROOT, Run, atomic_write_bytes

# The page-weight budget of one widget (weights and runtime), stated in the README and measured by
# tests/test_widgets.py: about what a page of a few photographs weighs.
BUDGET_BYTES = 2_000_000


class WidgetError(ValueError):
    """A model the widget runtime cannot run (an unknown layer) or an input of the wrong shape."""


@dataclass(frozen=True)
class Exported:
    """What a chapter's widget call wrote: the page's HTML, the weights script and its size."""

    html: str
    path: Path
    bytes: int

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Shown in the chapter: the widget's HTML (the plain text is what nbval compares)."""
        return {"text/html": self.html, "text/plain": f"interactive figure ({self.path.stem})"}


def _f32(t: torch.Tensor | np.ndarray) -> str:
    """Little-endian float32 bytes as base64 (every browser's typed arrays are little-endian)."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def _act(m: nn.Module) -> dict[str, Any]:
    if isinstance(m, nn.LeakyReLU):
        return {"fn": "leaky_relu", "slope": float(m.negative_slope)}
    if isinstance(m, nn.ReLU):
        return {"fn": "relu"}
    if isinstance(m, nn.Tanh):
        return {"fn": "tanh"}
    if isinstance(m, nn.Sigmoid):
        return {"fn": "sigmoid"}
    raise WidgetError(f"the widget runtime has no {type(m).__name__} layer (it runs SeedLinear, LeakyReLU, "
                      "ReLU, Tanh and Sigmoid)")


def mlp_layers(net: nn.Module, output: str | None = None) -> list[dict[str, Any]]:
    """The runtime's description of ``net``, a (nested) nn.Sequential of single-seed SeedLinear layers
    and activations: per affine layer its shape, weights (n_in x n_out, row-major), bias and the
    activation after it. ``output`` adds a final activation applied outside ``net`` (the VAE's
    sigmoid on the decoder's logits)."""
    layers: list[dict[str, Any]] = []
    for m in net.modules():
        if isinstance(m, nn.Sequential):
            continue
        if isinstance(m, SeedLinear):
            if m.weight.shape[0] != 1:
                raise WidgetError(f"a widget runs one seed's model; this layer holds {m.weight.shape[0]} "
                                  "(select one seed first: models.select_seed)")
            layers.append({"n_in": m.weight.shape[1], "n_out": m.weight.shape[2], "act": {"fn": "none"},
                           "w": _f32(m.weight[0]), "b": _f32(m.bias[0, 0])})
        elif not layers:
            raise WidgetError(f"{type(m).__name__} before the first affine layer")
        else:
            layers[-1]["act"] = _act(m)
    if output is not None:
        layers[-1]["act"] = _act({"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[output])
    return layers


def widget_path(profile: str, name: str, results_root: str | Path = RESULTS_ROOT) -> Path:
    return Path(results_root) / profile / "widgets" / f"{name}.js"


def page_src(profile: str, name: str) -> str:
    """The weights script's path under the book's ``_static/`` (the Sphinx extension copies it there)."""
    return f"widgets/{profile}/{name}.js"


def source_of(src: str, results_root: str | Path = RESULTS_ROOT) -> Path:
    """The file behind a page's ``page_src`` (inverse of ``page_src``, for the Sphinx extension)."""
    _, profile, name = src.split("/")
    return widget_path(profile, Path(name).stem, results_root)


def _export(name: str, kind: str, run: Run, profile: str, spec: dict[str, Any], caption: str,
            results_root: str | Path) -> Exported:
    payload = {"name": name, "kind": kind, "profile": profile, "run": run.path.name, "seed": run.cfg.seed,
               "epochs": run.cfg.epochs, **spec}
    script = (f"// {name}: the weights of run {run.path.name} ({profile}), written by mnistgen.widgets when "
              f"its chapter rendered.\nmnistgenRegister({json.dumps(payload, separators=(',', ':'))});\n").encode()
    path = widget_path(profile, name, results_root)
    atomic_write_bytes(path, lambda f: f.write(script))
    div = (f'<div class="mnistgen-widget" data-widget="{name}" data-kind="{kind}" '
           f'data-src="{page_src(profile, name)}" data-caption="{html.escape(caption, quote=True)}"></div>')
    return Exported(div, path, len(script))


def _noise(z: torch.Tensor, n: int, z_dim: int) -> torch.Tensor:
    if z.shape != (n, z_dim):
        raise WidgetError(f"expected {n} noise vectors of {z_dim} values, got shape {tuple(z.shape)}")
    return z


@torch.no_grad()
def interpolation(G: nn.Module, run: Run, profile: str, z: torch.Tensor, *,
                  results_root: str | Path = RESULTS_ROOT) -> Exported:
    """The GAN chapter's widget: two noise vectors (``z``: 2 x z_dim, the figure's first pair; either
    resampled in the page), a slider between them, linear or spherical path, G drawn live."""
    if not isinstance(G, Generator):
        raise WidgetError(f"interpolation needs the GAN's Generator, got {type(G).__name__}")
    spec = {"z_dim": G.z_dim, "out_range": [-1, 1], "layers": mlp_layers(G.net),
            "z0": _noise(z, 2, G.z_dim).tolist()}
    return _export("gan", "interpolation", run, profile, spec,
                   f"G of seed {run.cfg.seed} after {run.cfg.epochs} epochs, running in this page", results_root)


@torch.no_grad()
def digit_picker(G: nn.Module, run: Run, profile: str, z: torch.Tensor, *,
                 results_root: str | Path = RESULTS_ROOT) -> Exported:
    """The AC-GAN chapter's widget: one noise vector (``z``: 1 x z_dim; resampled in the page), the
    ten digits G draws for it, and a picker that shows one of them large."""
    if not isinstance(G, ConditionalGenerator):
        raise WidgetError(f"digit_picker needs the AC-GAN's ConditionalGenerator, got {type(G).__name__}")
    spec = {"z_dim": G.z_dim, "out_range": [-1, 1], "layers": mlp_layers(G.net),
            "embed": _f32(G.embed.weight[0]), "n_classes": G.n_classes, "z0": _noise(z, 1, G.z_dim).tolist()}
    return _export("acgan", "digit_picker", run, profile, spec,
                   f"G(z, c) of seed {run.cfg.seed} after {run.cfg.epochs} epochs, running in this page",
                   results_root)


@torch.no_grad()
def latent_pointer(vae: nn.Module, run: Run, profile: str, means: np.ndarray, labels: np.ndarray, *,
                   extent: float = 3.0, results_root: str | Path = RESULTS_ROOT) -> Exported:
    """The VAE chapter's widget: a pad over the 2-d latent plane (z in [-extent, extent]^2, the
    prior's ±3 sd) showing the posterior means ``means`` of test images coloured by ``labels``;
    the decoder's mean image where the pointer is."""
    if not isinstance(vae, VAE) or vae.z_dim != 2:
        raise WidgetError("latent_pointer needs a VAE with a 2-d latent space")
    means = np.asarray(means, dtype=np.float32)
    labels = np.asarray(labels)
    if means.ndim != 2 or means.shape[1] != 2 or len(labels) != len(means):
        raise WidgetError(f"means must be (N, 2) with N labels; got {means.shape} and {labels.shape}")
    spec = {"z_dim": 2, "out_range": [0, 1], "layers": mlp_layers(vae.dec, output="sigmoid"),
            "extent": float(extent), "points": _f32(means),
            "labels": base64.b64encode(labels.astype(np.uint8).tobytes()).decode()}
    return _export("vae", "latent_pointer", run, profile, spec,
                   f"the d = 2 decoder of seed {run.cfg.seed} after {run.cfg.epochs} epochs, running in this page",
                   results_root)


def to_grey(y: torch.Tensor, out_range: tuple[float, float]) -> torch.Tensor:
    """A model's output in ``out_range`` as the canvas's grey levels 0..255 (float, unrounded)."""
    lo, hi = out_range
    return ((y - lo) / (hi - lo)).clamp(0, 1) * 255
