"""Evaluation on real images and segmentation of the user's photos.

metrics.py (maxF_beta, IoU, acc, MAE; jitted, streaming), wsol.py (MaxBoxAcc,
PxAP), inference.py (fixed-shape batches over images of any size),
evaluate.py (one dataset), paper.py + tables.py (eval.json / eval.md),
segment.py (a folder of photos), stage.py (the `eval` and `segment` stages).
"""
