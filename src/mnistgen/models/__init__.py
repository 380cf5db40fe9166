"""Network definitions only (nn.Modules): no training, no I/O."""

from .acgan import ACDiscriminator, ConditionalGenerator
from .classifier import LeNet, SmallVGG
from .gan import Discriminator, Generator
from .seeded import SeedEmbedding, SeedLinear, is_seed_batched, n_seeds, select_seed, stack_seeds
from .vae import VAE

__all__ = ["Generator", "Discriminator", "ConditionalGenerator", "ACDiscriminator", "VAE", "LeNet", "SmallVGG",
           "SeedLinear", "SeedEmbedding", "is_seed_batched", "n_seeds", "select_seed", "stack_seeds"]
