"""TFDS builders for the paper's evaluation datasets, from manual downloads.

ecssd.Ecssd ('ecssd'), duts.DutsTe / duts.DutsTr ('duts_te', 'duts_tr'),
dut_omron.DutOmron ('dut_omron'), flowers.Flowers102Segmentation
('flowers102_segmentation'). CUB comes from TFDS's own caltech_birds2011
(gansseg_jax.data.cub). Importing this package does not import TensorFlow;
import the module of the builder you need.
"""
