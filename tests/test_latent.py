"""Interpolation endpoints chosen by the yardstick (``mnistgen.latent``) with a generator and a
classifier whose answers are known: the 'digit' of z is the argmax of its first ten coordinates."""

import torch

from mnistgen import latent


class ToyG(torch.nn.Module):
    """Lights pixel argmax(z[:10]) (or always pixel ``fixed``): the digit is known from z."""

    def __init__(self, fixed: int | None = None):
        super().__init__()
        self.fixed = fixed

    def forward(self, z):
        out = -torch.ones(len(z), 784)
        d = z[:, :10].argmax(1) if self.fixed is None else torch.full((len(z),), self.fixed)
        out[torch.arange(len(z)), d] = 1.0
        return out


class ToyNet(torch.nn.Module):
    """Reads the lit pixel among the first ten as the digit, confidently."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def features(self, x):
        return x[:, :10] * 50

    def head(self, f):
        return f


def test_endpoints_are_different_confident_digits_in_draw_order():
    z, pairs, conf = latent.digit_pairs(ToyG(), ToyNet(), 16, torch.device("cpu"))
    digits = [d for p in pairs for d in p]
    assert len(set(digits)) == 8 and min(conf) >= latent.CONFIDENT
    assert torch.equal(z[:, :10].argmax(1), torch.tensor(digits))  # each endpoint is the digit reported


def test_a_generator_of_one_digit_still_gets_endpoints_and_says_which():
    z, pairs, conf = latent.digit_pairs(ToyG(fixed=3), ToyNet(), 16, torch.device("cpu"))
    assert len(z) == 8 and pairs[0] == (3, 3) and pairs[1] == (3, 3)  # one confident 3, then the most confident rest


def test_midpoint_norms_and_the_paired_test():
    s = latent.path_stats([ToyG(), ToyG(fixed=1)], ToyNet(), 64, torch.device("cpu"), pairs=50)
    assert abs(s.slerp_norm - s.end_norm) < 0.5 < s.end_norm - s.lerp_norm  # the straight path dips toward 0
    assert s.lerp_conf == s.slerp_conf and s.p is None  # these toys are as sure on either path: nothing to test
    text = latent.path_sentence(s)
    assert "mean ± sd over 2 seeds" in text and "no test" in text and "equally confidently" in text
