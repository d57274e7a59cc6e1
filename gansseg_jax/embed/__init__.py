"""Stage `embed`: encoder latents of a dataset's images (docs/method.md section 5)."""
