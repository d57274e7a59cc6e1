"""Data: evaluation datasets, the user's images, and the demo's scenes.

images.py (decode anything Pillow reads; masks binarised at 0.5 of their
range), example.py (Example, ReadLog), checks.py, preprocess.py (resize,
centre crop, padding; docs/method.md section 7), folder.py (images + masks
matched by stem), sources.py (datasets by name for config.eval.datasets),
cub.py (CUB through TFDS in ReDO's split), tfds_builders/ (ECSSD, DUTS,
DUT-OMRON, Flowers from manual downloads), scenes.py (procedural demo scenes).
"""
