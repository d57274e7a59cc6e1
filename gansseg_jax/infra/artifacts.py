"""Every file and folder a stage writes into the workdir, named once.

Paths are relative to the workdir W. The stage table (run/stages.py) lists
them as each stage's inputs and outputs; the stages read and write them
under these names.
"""
GENERATOR = "generator"  # convert: the Flax generator (orbax) + spec.json.
ENCODER = "encoder"  # convert: BigBiGAN's encoder, when it verifies.
EMBEDDINGS = "embeddings.npy"  # embed: [N, z_dim] encoder latents.
EMBEDDINGS_PARTIAL = "embeddings.partial"  # embed: resumable batches.
DIRECTIONS = "directions.npy"  # discover: [K, z_dim] candidate directions.
DISCOVER_CHECKPOINTS = "checkpoints/discover"
RANKING_CSV = "ranking.csv"  # score: every candidate's scores.
RANKING_MD = "ranking.md"  # score: the ranking and the choice, in words.
STRIPS = "strips"  # score: G(z + t h) strips of the shortlist.
BG_DIRECTION = "bg_direction.npy"  # score: [z_dim] the direction used.
BG_AFFINE = "bg_affine.npy"  # score: [2, 3, 4] its two fitted affine maps.
UNET = "unet"  # train: the trained U-Net (orbax) + spec.json.
TRAIN_CHECKPOINTS = "checkpoints/train"
FILTER_RATES = "filter_rates.json"  # train: each filter's measured pass rate.
EXPORT = "export"  # export: the U-Net as ONNX and a TF SavedModel.
REPORT_HTML = "report.html"  # report
REPORT_MD = "report.md"  # report
