"""The `export` stage: the trained U-Net as ONNX and as a TF SavedModel."""
