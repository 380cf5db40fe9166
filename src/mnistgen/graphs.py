"""Training epochs on a CUDA GPU: the epoch's random numbers drawn at once, every step a CUDA graph.

Why: on a GPU these small MLPs are bound by kernel launches, not arithmetic. A GAN step is a
few hundred small kernels; eager PyTorch launches them one by one from Python (~3 ms per step
on an H100 whatever the number of seeds), while replaying a captured ``torch.cuda.CUDAGraph``
launches the whole step at once. See the README's GPU section for the measurements.

How, following the "whole network capture" recipe of the ``torch.cuda.graphs`` documentation:
- Static inputs. The epoch's permutations (S, n) and random draws (S, n, ...) are copied into
  buffers that live as long as this object, and a step finds its columns through a step counter
  that lives on the device and is advanced inside the graph: a replay needs no host work at all.
- Static outputs. Each step writes its logged values into (steps, S) buffers at the counter's
  row, read once per epoch (one host synchronisation per epoch).
- Each distinct step (the batch size, smaller for the epoch's last batch; a D-only or a D+G
  step; the learning rates, which a captured fused Adam holds as constants) runs eagerly
  ``WARMUP`` times on a side stream, then is captured once and replayed from then on. The warm-up
  steps are real training steps: they compute exactly what the graph computes.
- Adam is built with ``capturable=True`` on CUDA (``train.init_state``), so its step count lives
  on the device.

Why not ``torch.compile(mode="reduce-overhead")``: tried on the GAN step, it fails at G's backward
("Trying to backward through the graph a second time"): G(z) is computed once and D's update,
compiled into the same region, has already run backward through that graph. Capturing the
whole step by hand needs no restructuring and gives one graph per step instead of several.

The draws differ from the CPU path's (which draws batch by batch, in an order fixed by every
cached CPU result): a GPU run is reproducible on the same GPU model and software, not bitwise
equal to a CPU run of the same seed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from .state import TrainState
from .steps import Family, StepLog, g_step, permutations


class DeviceEpoch:
    """Runs the epochs of one training state on its GPU; ``graphs=False`` runs the same steps eagerly
    (also on CPU, where the tests check it against the step-by-step loop)."""

    WARMUP = 3

    def __init__(self, st: TrainState, cfg: Any, x: torch.Tensor, log_steps: bool, fam: Family,
                 graphs: bool = True) -> None:
        self.fam, self.graphs_on, self.log_steps = fam, graphs, log_steps
        self.cfg, self.x = cfg, x
        self._owner = (tuple(st.models.values()), tuple(st.optimizers.values()))
        dev, n, b = x.device, len(x), cfg.batch_size
        self.n_steps = -(-n // b)
        self.every = fam.log(cfg, log_steps)
        self.logs = {k: torch.zeros(self.n_steps // e, st.n_seeds, device=dev) for k, e in self.every.items()}
        self.counter = torch.zeros(1, dtype=torch.long, device=dev)
        self.aranges = {m: torch.arange(m, device=dev) for m in {b, n - (self.n_steps - 1) * b}}
        self.perm: torch.Tensor | None = None
        self.draws: dict[str, torch.Tensor] = {}
        self.g_steps = [g_step(cfg, i) for i in range(self.n_steps)]
        self.graphs: dict[tuple, torch.cuda.CUDAGraph] = {}
        self.warm: Counter[tuple] = Counter()
        self.side = torch.cuda.Stream(device=dev) if graphs else None

    def fits(self, st: TrainState, cfg: Any, x: torch.Tensor, log_steps: bool) -> bool:
        """Whether this object's buffers and graphs belong to ``st``'s models and these inputs."""
        return (self._owner == (tuple(st.models.values()), tuple(st.optimizers.values()))
                and x is self.x and cfg == self.cfg and log_steps == self.log_steps)

    def run(self, st: TrainState, cfg: Any, x: torch.Tensor, y: torch.Tensor) -> StepLog:
        dev, n, b = x.device, len(x), cfg.batch_size
        perm, draws = permutations(n, st.data_rngs, dev), self.fam.draw(st, cfg, n, dev)
        if self.perm is None:  # the first epoch's tensors become the static buffers
            self.perm, self.draws = perm, draws
        else:
            self.perm.copy_(perm)
            for k, v in draws.items():
                self.draws[k].copy_(v)
        self.counter.zero_()
        lrs = tuple(g["lr"] for o in st.optimizers.values() for g in o.param_groups)
        for i in range(self.n_steps):
            m = min(b, n - i * b)
            key = (m, self.g_steps[i], lrs)
            self._run_step(key, lambda: self._step(st, cfg, x, y, m, key[1]))
        return {k: v.clone() for k, v in self.logs.items()}

    def _step(self, st: TrainState, cfg: Any, x: torch.Tensor, y: torch.Tensor, m: int, g_step: bool) -> None:
        """One step reading and writing only static buffers (so it can be captured)."""
        cols = self.counter * cfg.batch_size + self.aranges[m]
        idx = self.perm.index_select(1, cols)
        draws = {k: v.index_select(1, cols) for k, v in self.draws.items()}
        values = self.fam.step(st, cfg, x, y, idx, draws, g_step, self.log_steps)
        for k, v in values.items():
            row = self.counter if self.every[k] == 1 else torch.div(self.counter, self.every[k], rounding_mode="floor")
            self.logs[k].index_copy_(0, row, v.detach().view(1, -1))
        self.counter.add_(1)

    def _run_step(self, key: tuple, step: Any) -> None:
        if not self.graphs_on:
            step()
            return
        graph = self.graphs.get(key)
        if graph is not None:
            graph.replay()
            return
        if self.warm[key] < self.WARMUP:
            # eager warm-up on a side stream, as the torch.cuda.graphs recipe asks (lazy
            # initialisation, cuBLAS workspaces and autograd's streams settle before capture)
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                step()
            torch.cuda.current_stream().wait_stream(self.side)
            self.warm[key] += 1
            return
        # Capture on this object's own stream, in thread-local mode: several trainings may share the
        # GPU from threads of one process (``train all`` on a GPU), each on its own stream, and one
        # thread's capture must neither see nor forbid the others' work. (``torch.cuda.graph`` would
        # also synchronise the whole device first, which would break a capture under way in another
        # thread.) Nothing runs during capture; the replay below performs the step.
        graph = torch.cuda.CUDAGraph()
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            graph.capture_begin(capture_error_mode="thread_local")
            try:
                step()
            finally:
                graph.capture_end()
        torch.cuda.current_stream().wait_stream(self.side)
        self.graphs[key] = graph
        graph.replay()
