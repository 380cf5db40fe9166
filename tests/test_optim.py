"""MemberAdam against torch's own fused Adam: the same bits for one setting, each member's own
Adam for several, refused when the members do not fit."""

import pytest
import torch

from mnistgen.optim import MemberAdam


def _grads(n=25, shape=(4, 7, 3)):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=gen) * (1 + i) for i in range(n)]


def test_one_setting_is_torch_fused_adam_bit_for_bit():
    w = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(1))
    ours, theirs = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    a = MemberAdam([ours], [(0.5, 0.999)] * 4, lr=1e-3)
    b = torch.optim.Adam([theirs], lr=1e-3, betas=(0.5, 0.999), fused=True)
    for g in _grads():
        ours.grad, theirs.grad = g.clone(), g.clone()
        a.step()
        b.step()
    assert torch.equal(ours, theirs)
    sa, sb = a.state_dict()["state"][0], b.state_dict()["state"][0]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_each_member_gets_its_own_betas_and_nothing_of_the_others():
    """Each member equals its own Adam run alone, to rounding: the fused kernel's vector loop may
    round a slice's elements differently from a tensor of another length (seen: 1 ulp), so the
    comparison runs in float64, where 25 steps of a few ulps of lr = 1e-2 stay far below 1e-12,
    while a wrong beta moves a weight by ~1e-3."""
    w = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    betas = [(0.5, 0.999), (0.5, 0.999), (0.9, 0.99), (0.5, 0.999)]  # runs: members 0-1, 2, 3
    ours = torch.nn.Parameter(w.clone())
    opt = MemberAdam([ours], betas, lr=1e-2)
    alone = [torch.nn.Parameter(w[i:i + 1].clone()) for i in range(4)]
    refs = [torch.optim.Adam([p], lr=1e-2, betas=b, fused=True) for p, b in zip(alone, betas)]
    assert opt.runs == [(0, 2, (0.5, 0.999)), (2, 3, (0.9, 0.99)), (3, 4, (0.5, 0.999))]
    for g in _grads():
        g = g.double()
        ours.grad = g.clone()
        opt.step()
        for i, (p, r) in enumerate(zip(alone, refs)):
            p.grad = g[i:i + 1].clone()
            r.step()
    for i, p in enumerate(alone):
        torch.testing.assert_close(ours[i:i + 1], p, rtol=0, atol=1e-12, msg=f"member {i}")
    assert (ours[2] - ours[0]).abs().max() > 1e-4  # the same gradients, another beta: another path


def test_members_that_do_not_fit_are_refused():
    p = torch.nn.Parameter(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"in \[0, 1\) per member"):
        MemberAdam([p], [(1.0, 0.999)], lr=1e-3)
    with pytest.raises(ValueError, match="without a member dimension has one member"):
        MemberAdam([p], [(0.5, 0.999)] * 2, lr=1e-3, batched=False)
    opt = MemberAdam([p], [(0.5, 0.999)] * 2, lr=1e-3)
    p.grad = torch.ones_like(p)
    with pytest.raises(ValueError, match="holds 3 members; this optimiser has betas for 2"):
        opt.step()
