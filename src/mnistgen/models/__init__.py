"""Network definitions only (nn.Modules): no training, no I/O."""

from .acgan import ACDiscriminator, ConditionalGenerator
from .classifier import LeNet
from .gan import Discriminator, Generator
from .vae import VAE

__all__ = ["Generator", "Discriminator", "ConditionalGenerator", "ACDiscriminator", "VAE", "LeNet"]
