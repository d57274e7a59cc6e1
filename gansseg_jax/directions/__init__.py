"""Latent directions: candidates, and the one that segments.

docs/method.md sections 2-3.

Modules:
  deformator      A: R^K -> R^d of Voynov & Babenko (ortho, linear, ...).
  discover        their training loop (jitted, data-parallel, resumable).
  sefa            closed-form candidates: top eigenvectors of W^T W (SeFa).
  direction_file  the authors' bg_direction.pth or a .npy as candidates.
  score           the affine test of appendix B, all candidates in one vmap.
  ranking         the paper's ranking rule and the ranking tables.
  strips          image strips G(z + t h) as PNG files.
  stage           the `discover` and `score` stages.
"""
