"""Figures: sample grids, interpolations, training curves, latent maps (matplotlib + torchvision grids).

Every function returns a matplotlib Figure and draws images as given: callers pass pixels in
[0, 1] (``as_unit`` converts generator output or uint8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter
import torch
from torchvision.utils import make_grid

plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "axes.spines.top": False,
                     "axes.spines.right": False, "font.size": 10, "legend.fontsize": 10})
# The book's text column is 672 px wide and its figures are drawn at 100 dpi: a figure at most
# COLUMN_IN wide is shown at its own size, so 10-pt text (13.9 px) reads as 10 pt. Wider, it is
# shrunk; below 0.864 of its size 10-pt text falls under 9 pt on a 96-dpi screen (12 px), which
# tests/test_book.py checks for in Chromium. Panels are stacked, not squeezed side by side.
COLUMN_IN = 6.5


def log_axis(ax: plt.Axes, which: str = "y") -> None:
    """Put ``ax``'s ``which`` axis on a log scale labelled in plain numbers a reader can read a value
    off: at 1, 2 and 5 times each power of ten (only the powers where the view spans over four
    decades; round numbers evenly spaced where it spans under one). Matplotlib's default labels only the powers of ten:
    two labels, 10² and 10³, on an FID curve from 90 to 2,000. Call it after plotting (the view's
    span picks the labels)."""
    getattr(ax, f"set_{which}scale")("log")
    lo, hi = getattr(ax, f"get_{which}lim")()
    decades = np.log10(hi / lo)
    axis = getattr(ax, f"{which}axis")
    if decades > 1:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades > 4 else (1.0, 2.0, 5.0)))
    else:  # within a decade, evenly spaced round numbers (100, 110, 120, ...)
        axis.set_major_locator(MaxNLocator(nbins=5))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def unreadable_log_axes(fig: plt.Figure, least: int = 3) -> list[str]:
    """The log axes of ``fig`` with fewer than ``least`` labelled ticks in view (axes whose ticks
    were set by hand, ``set_xticks``, are taken as meant). Drawn first, so the labels are final."""
    fig.canvas.draw()
    found = []
    for i, ax in enumerate(fig.axes):
        for which in ("x", "y"):
            axis = getattr(ax, f"{which}axis")
            if axis.get_scale() != "log" or isinstance(axis.get_major_locator(), FixedLocator):
                continue
            lo, hi = sorted(getattr(ax, f"get_{which}lim")())
            labels = [t.get_text() for t in axis.get_ticklabels(which="both")
                      if t.get_text() and lo <= t.get_position()[0 if which == "x" else 1] <= hi]
            if len(labels) < least:
                found.append(f"axes {i}: the log {which} axis is labelled only at {labels or 'no tick'}")
    return found


def as_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or tanh output [-1, 1] or [0, 1] floats -> float [0, 1] on CPU, shape (N, 1, 28, 28)."""
    x = x.detach().cpu()
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.min() < 0:
        x = (x.float().clamp(-1, 1) + 1) / 2
    return x.float().reshape(-1, 1, 28, 28)


def grid_array(images: torch.Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """A (H, W) array tiling ``images`` ``nrow`` per row, with white padding between digits."""
    g = make_grid(as_unit(images), nrow=nrow, padding=padding, pad_value=1.0)
    return g[0].numpy()


def _grid_figure(images: torch.Tensor, ncol: int, figsize: tuple[float, float], title: str | None,
                 row_labels: Sequence[str] | None, col_labels: Sequence[str] | None) -> plt.Figure:
    """Tile ``images`` ``ncol`` per row on one axis; label rows and columns at the digits' centres."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.imshow(grid_array(images, ncol), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    centres = lambda n: [2 + 30 * i + 14 for i in range(n)]  # 28-px digits, 2-px padding
    n_rows = int(np.ceil(len(images) / ncol))
    ax.set_yticks(centres(n_rows) if row_labels else [], list(row_labels or []))
    ax.set_xticks(centres(ncol) if col_labels else [], list(col_labels or []))
    ax.tick_params(left=False, bottom=False)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def sample_grid(images: torch.Tensor, nrow: int = 10, title: str | None = None,
                row_labels: Sequence[str] | None = None, size: float = 5.0) -> plt.Figure:
    """A grid of ``nrow`` digits per row (e.g. 100 samples as 10 x 10)."""
    n_rows = int(np.ceil(len(images) / nrow))
    return _grid_figure(images, nrow, (size, size * n_rows / nrow), title, row_labels, None)


def image_rows(rows: Sequence[torch.Tensor], row_labels: Sequence[str], title: str | None = None,
               col_labels: Sequence[str] | None = None, size: float = COLUMN_IN - 0.4) -> plt.Figure:
    """One row of digits per entry of ``rows`` (each (S, ...)), labelled on the left."""
    ncol = len(rows[0])
    images = torch.cat([as_unit(r) for r in rows])
    return _grid_figure(images, ncol, (size, size * len(rows) / ncol + 0.4), title, row_labels, col_labels)


def pair_panels(panels: Sequence[tuple[str, torch.Tensor, torch.Tensor, Sequence[str]]],
                size: float = COLUMN_IN - 0.4) -> plt.Figure:
    """Panels of image pairs stacked: each (title, top row, bottom row, a label under each pair),
    e.g. samples above their nearest training images, the pair's distance below it."""
    ncol = max(len(top) for _, top, _, _ in panels)
    panel_h = size * 2 / ncol + 0.45  # two rows of digits, the labels under them and the title above
    fig, axes = plt.subplots(len(panels), 1, figsize=(size, panel_h * len(panels)), squeeze=False)
    for ax, (title, top, bottom, labels) in zip(axes[:, 0], panels):
        ax.imshow(grid_array(torch.cat([as_unit(top), as_unit(bottom)]), len(top)), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([2 + 30 * i + 14 for i in range(len(labels))], list(labels), fontsize=7)
        ax.set_yticks([])
        ax.tick_params(bottom=False)
        ax.set_title(title, fontsize=8, loc="left")
        for sp in ax.spines.values():
            sp.set_visible(False)
    fig.tight_layout()
    return fig


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a[None] * (1 - t[:, None]) + b[None] * t[:, None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016): keeps the norm typical of a Gaussian sample in high dimension."""
    omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1.0, 1.0))
    so = torch.sin(omega)
    if so.abs() < 1e-6:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) / so)[:, None] * a[None] + (torch.sin(t * omega) / so)[:, None] * b[None]


History = list[dict[str, Any]]


def _per_seed(ax: plt.Axes, histories: Sequence[History], key: str, label: str, color: Any = None,
              markers: bool = False) -> None:
    """Every seed as a thin line, their mean as a thick one (one legend entry, with n)."""
    series = [[(h["epoch"], h[key]) for h in hist if key in h] for hist in histories]
    series = [s for s in series if s]
    if not series:
        return
    line = None
    for s in series:
        ep, v = zip(*s)
        (line,) = ax.plot(ep, v, color=color if line is None else line.get_color(), lw=0.8, alpha=0.45)
    epochs = sorted(set.intersection(*[{e for e, _ in s} for s in series]))
    by_epoch = [dict(s) for s in series]
    mean = [float(np.mean([b[e] for b in by_epoch])) for e in epochs]
    n = len(series)
    ax.plot(epochs, mean, color=line.get_color(), lw=2, marker="o" if markers or len(epochs) < 15 else None, ms=3,
            label=f"{label} (mean of {n} seeds)" if n > 1 else label)


def gan_curves(histories: Sequence[History], title: str = "") -> plt.Figure:
    """Losses, and D(x) / D(G(z)) per epoch with the equilibrium values marked: every seed.

    At the equilibrium (D = 1/2 everywhere) D's loss is 2 log 2 and the non-saturating G loss
    -log D(G(z)) is log 2: both are drawn, so that neither curve is read against the other's."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(COLUMN_IN, 6.6), sharex=True)
    _per_seed(a1, histories, "d_loss", "D loss")
    _per_seed(a1, histories, "g_loss", "G loss")
    a1.axhline(2 * np.log(2), color="C0", ls=":", lw=1, label="D loss at equilibrium, 2 log 2")
    a1.axhline(np.log(2), color="C1", ls=":", lw=1, label="G loss at equilibrium, log 2")
    a1.set_ylabel("loss (nats)")
    _legend_above(a1)
    _per_seed(a2, histories, "d_real", "D(x), real")
    _per_seed(a2, histories, "d_fake", "D(G(z)), generated")
    a2.axhline(0.5, color="gray", ls="--", lw=1, label="Nash equilibrium, 1/2")
    a2.set_ylim(0, 1)
    a2.set_xlabel("epoch")
    a2.set_ylabel("mean D output")
    a2.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(a2)
    if title:
        fig.suptitle(title)
    _fit_column(fig)
    return fig


def _legend_above(ax: plt.Axes) -> None:
    """The panel's legend in two columns above it: the axes keep the column's width."""
    ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)


def _fit_column(fig: plt.Figure) -> None:
    """Lay out ``fig`` so that, legends outside the axes included, it is COLUMN_IN wide."""
    fig.tight_layout()
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    if box.width > COLUMN_IN:  # the axes give way to what sticks out (legends at the right)
        fig.set_size_inches(fig.get_figwidth() * COLUMN_IN / box.width, fig.get_figheight())
        fig.tight_layout()


def curves(histories: Sequence[History], panels: Sequence[Sequence[tuple[str, str]]], ylabels: Sequence[str],
           title: str = "", hlines: dict[int, tuple[float, str]] | None = None) -> plt.Figure:
    """Generic per-epoch curves of every seed: ``panels`` is a list of [(history key, legend label), ...]."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(COLUMN_IN, 3.0 * len(panels)), squeeze=False, sharex=True)
    for i, (ax, panel) in enumerate(zip(axes[:, 0], panels)):
        for key, label in panel:
            _per_seed(ax, histories, key, label)
        if hlines and i in hlines:
            y, lab = hlines[i]
            ax.axhline(y, color="gray", ls="--", lw=1, label=lab)
        ax.set_ylabel(ylabels[i])
        _legend_above(ax)
    axes[-1, 0].set_xlabel("epoch")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    _fit_column(fig)
    return fig


QUALITY_PANELS = (("fid", "FID (first yardstick) ↓"), ("inception_score", "Inception Score ↑"),
                  ("top_class_share", "share of the most frequent digit"))


def quality_curves(groups: dict[str, Sequence[History]], title: str = "",
                   updates_per_epoch: dict[str, int] | None = None) -> plt.Figure:
    """Sample quality recorded during training: FID, Inception Score and the most frequent digit's
    share (0.1 when balanced; a rise is a collapse), every seed of every group (e.g. a setting).

    ``updates_per_epoch`` (group -> generator updates per epoch): plot against generator updates
    instead of epochs, so that groups of different batch sizes are compared at equal updates."""
    fig, grid = plt.subplots(2, 2, figsize=(COLUMN_IN, 5.6))
    axes, key_ax = [grid[0, 0], grid[0, 1], grid[1, 0]], grid[1, 1]  # the fourth cell holds the legend
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (label, histories) in enumerate(groups.items()):
        if updates_per_epoch is not None:
            histories = [[{**row, "epoch": row["epoch"] * updates_per_epoch[label]} for row in h] for h in histories]
        for ax, (key, _) in zip(axes, QUALITY_PANELS):
            _per_seed(ax, histories, key, label, color=colors[j % len(colors)], markers=True)
    axes[2].axhline(0.1, color="gray", ls="--", lw=1, label="balanced digits, 0.1")
    axes[2].set_ylim(0, 1)
    for ax, (_, ylabel) in zip(axes, QUALITY_PANELS):
        ax.set_xlabel("epoch" if updates_per_epoch is None else "generator updates")
        ax.set_ylabel(ylabel)
        if updates_per_epoch is None:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    log_axis(axes[0])
    handles, labels = axes[2].get_legend_handles_labels()
    key_ax.set_axis_off()
    key_ax.legend(handles, [lab.replace(" (mean", "\n(mean") for lab in labels], frameon=False, loc="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def snapshot_strip(snapshots: Sequence[torch.Tensor], n_cols: int = 8, n_digits: int = 6) -> plt.Figure:
    """Fixed-noise samples (rows) at evenly spaced epochs (columns)."""
    n = len(snapshots)
    epochs = sorted({int(round(e)) for e in np.linspace(1, n, min(n_cols, n))})
    rows = [torch.stack([snapshots[e - 1][d] for e in epochs]) for d in range(n_digits)]
    return image_rows(rows, [f"z{d + 1}" for d in range(n_digits)], col_labels=[f"ep {e}" for e in epochs],
                      size=min(COLUMN_IN - 0.4, 0.8 * len(epochs)))


def nll_vs_k(rows: Sequence[dict[str, Any]], published: dict[str, dict[str, Any]]) -> plt.Figure:
    """Test NLL against the k of the training bound: this report's rows (mean ± sd over seeds, every
    seed as a dot) per objective, beside published values (``{label: table}``, open markers;
    dashed: IWAE, dotted: VAE)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    styles = {"iwae": ("C0", "IWAE (log-mean of k weights)"), "vae": ("C1", "VAE (mean of k ELBOs)")}
    for objective, (color, label) in styles.items():
        # k = 1 is both objectives: the VAE line starts at the IWAE's k = 1 row
        mine = sorted([r for r in rows if r["objective"] == objective or r["k"] == 1], key=lambda r: r["k"])
        if not any(r["objective"] == objective for r in mine):
            continue
        ks = [r["k"] for r in mine]
        ax.errorbar(ks, [r["test_nll"] for r in mine], yerr=[r["test_nll_sd"] or 0 for r in mine], color=color,
                    marker="o", capsize=3, label=f"this report, {label}")
        for r in mine:
            ax.scatter([r["k"]] * len(r["per_seed"]), [s["test_nll"] for s in r["per_seed"]], s=8, color=color,
                       alpha=0.4)
    for (name, table), marker in zip(published.items(), ("s", "D", "^")):
        for objective, ls, color in (("iwae", "--", "gray"), ("vae", ":", "darkgray")):
            pts = sorted((r["k"], r["test_nll"]) for r in table["rows"] if r["objective"] == objective)
            if pts:
                ax.plot(*zip(*pts), ls=ls, marker=marker, mfc="none", color=color, label=f"{name}, {objective.upper()}")
    ax.set_xscale("log")
    ks = sorted({r["k"] for r in rows})
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("k (samples per image in the training bound)")
    ax.set_ylabel("test NLL (nats) ↓")
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def group_curves(groups: dict[str, Sequence[History]], key: str, ylabel: str,
                 updates_per_epoch: dict[str, int] | None = None, ylim: tuple[float, float] | None = None) -> plt.Figure:
    """One panel: ``key`` of every group (e.g. a table's rows), every seed thin and the mean thick;
    against generator updates where ``updates_per_epoch`` is given, so groups of other batch sizes
    line up."""
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (label, histories) in enumerate(groups.items()):
        if updates_per_epoch is not None:
            histories = [[{**row, "epoch": row["epoch"] * updates_per_epoch[label]} for row in h] for h in histories]
        _per_seed(ax, histories, key, label, color=colors[j % len(colors)])
    ax.set_xlabel("epoch" if updates_per_epoch is None else "updates")
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(frameon=False, loc="lower right", fontsize=8)  # inside: the curves rise away from that corner
    fig.tight_layout()
    return fig
