"""Learning-rate schedules that change between epochs (set before each epoch by the training loop)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ClassifierConfig, IWAEConfig

if TYPE_CHECKING:
    from .state import TrainState

BURDA_STAGES = 8      # Burda et al. (2016): stage i runs 3^i epochs at lr * 10^(-i/7), i = 0..7
BURDA_EPOCHS = 3280   # sum of 3^i, i = 0..7


def burda_boundaries(epochs: int) -> list[int]:
    """The epoch at which each of the eight stages ends, for a schedule of ``epochs`` epochs.

    Burda et al. run stage i for 3^i of their 3,280 epochs: stage i ends at (3^(i+1) - 1) / 2.
    A schedule of another length keeps the cumulative fractions: stage i ends at
    round(epochs * (3^(i+1) - 1) / 2 / 3280), then every stage gets at least one epoch where
    there are enough (epochs >= 8), taken from the stages after it. ``epochs = 3280`` is
    theirs exactly; with fewer than eight epochs the first stages are the ones left out.
    """
    ends = [round(epochs * (3 ** (i + 1) - 1) / 2 / BURDA_EPOCHS) for i in range(BURDA_STAGES)]
    if epochs >= BURDA_STAGES:
        for i in range(BURDA_STAGES):  # at least one epoch each, without running past the end
            ends[i] = min(max(ends[i], (ends[i - 1] if i else 0) + 1), epochs - (BURDA_STAGES - 1 - i))
    return ends


def burda_stage(epoch: int, epochs: int) -> int:
    """The learning-rate stage i (0..7) of epoch ``epoch`` (0-based) of ``epochs``."""
    return next(i for i, end in enumerate(burda_boundaries(epochs)) if epoch < end)


def set_burda_lr(st: TrainState, cfg: IWAEConfig) -> None:
    for group in st.optimizers["vae"].param_groups:
        group["lr"] = cfg.lr * 10 ** (-burda_stage(st.epoch, cfg.epochs) / 7)


def set_classifier_lr(st: TrainState, cfg: ClassifierConfig) -> None:
    """A step schedule: the learning rate halves after every third of the epochs."""
    for group in st.optimizers["net"].param_groups:
        group["lr"] = cfg.lr * 0.5 ** (3 * st.epoch // cfg.epochs)

