"""Adam over seed-batched weights whose members may have their own betas.

A training batch stacks its members' weights along a leading dimension (``models/seeded.py``).
Members that differ only in Adam's betas (the GAN sweep's beta1 = 0.5 and 0.9 at one batch size)
can then train as one batch, so every matrix product is twice as wide; only the optimiser must
treat them apart. Adam is elementwise, so this is torch's fused Adam kernel applied to each
consecutive run of members that share their betas (contiguous slices of the stacked tensors): one
call when all share them, which is exactly ``torch.optim.Adam(fused=True)``'s update. The step
count is shared (every member steps together) and incremented once per step.

The per-member betas live on the optimiser, not in its param groups, so a state dict holds what
``torch.optim.Adam`` holds (step, exp_avg, exp_avg_sq) and loading one never overwrites them:
a member's betas always come from its configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


class MemberAdam(torch.optim.Optimizer):
    """Adam (Kingma & Ba 2015) with ``betas[i]`` for member ``i`` of every seed-batched parameter.

    ``batched``: whether the parameters have the member dimension first (False: an ordinary model,
    one member, whose parameters are updated whole).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], betas: Sequence[tuple[float, float]], lr: float,
                 eps: float = 1e-8, batched: bool = True) -> None:
        betas = [(float(b1), float(b2)) for b1, b2 in betas]
        if not betas or not all(0.0 <= b < 1.0 for pair in betas for b in pair):
            raise ValueError(f"one (beta1, beta2) pair in [0, 1) per member is needed, got {betas}")
        if not batched and len(betas) != 1:
            raise ValueError(f"a model without a member dimension has one member; got {len(betas)} betas")
        # the first member's betas stand in the param group, for code that reads Adam's groups
        super().__init__(params, {"lr": lr, "eps": eps, "betas": betas[0]})
        self.member_betas = betas
        self.batched = batched
        # consecutive members with equal betas: one fused call per run (slices are contiguous views)
        self.runs: list[tuple[int, int, tuple[float, float]]] = []
        for i, b in enumerate(betas):
            if self.runs and self.runs[-1][2] == b:
                self.runs[-1] = (self.runs[-1][0], i + 1, b)
            else:
                self.runs.append((i, i + 1, b))

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise ValueError("MemberAdam takes no closure")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                state = self.state[p]
                if not state:  # as torch's fused Adam: a float32 step count on the parameter's device
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if self.batched and p.shape[0] != len(self.member_betas):
                    raise ValueError(f"a parameter of shape {tuple(p.shape)} holds {p.shape[0]} members; "
                                     f"this optimiser has betas for {len(self.member_betas)}")
            steps = [self.state[p]["step"] for p in params]
            torch._foreach_add_(steps, 1)
            whole = len(self.runs) == 1
            for lo, hi, (beta1, beta2) in self.runs:
                def part(t: torch.Tensor) -> torch.Tensor:
                    return t if whole else t[lo:hi]
                torch._fused_adam_([part(p) for p in params], [part(p.grad) for p in params],
                                   [part(self.state[p]["exp_avg"]) for p in params],
                                   [part(self.state[p]["exp_avg_sq"]) for p in params], [], steps,
                                   amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0,
                                   eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)
