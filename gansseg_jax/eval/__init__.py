"""Evaluation on real images and segmentation of the user's photos.

metrics.py (maxF_beta, IoU, acc, MAE; jitted, streaming), wsol.py (MaxBoxAcc,
PxAP), inference.py (fixed-shape batches over images of any size; baselines
over worker processes), baselines/ (centre prior, wCtr: predictors without
training), evaluate.py (one dataset), layout.py (W/eval/<dataset>/ files),
paper.py + tables.py (eval.json / eval.md), segment.py (files and folders of
photos), stage.py (the `eval` and `segment` stages).
"""
