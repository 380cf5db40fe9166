"""mnistgen: GAN, VAE and AC-GAN on MNIST, as a reproducible report's library."""

__version__ = "0.1.0"
