"""gansseg_jax: "Big GANs Are Watching You" (Voynov, Morozov, Babenko) in JAX/Flax."""

__version__ = "0.1.0"
