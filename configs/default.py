"""Every hyperparameter of the method (docs/method.md), with the paper's values.

Other configs import this one and override a few fields. Not meant to be run
alone: it has no dataset. Command line of a derived config, e.g.:

  python -m gansseg_jax.main --config=configs/cub.py --workdir=runs/cub

`configs/default.py:small` is the same method at sizes that compile and run
in seconds on a CPU (a 32 px BigGAN of width 4, a U-Net of width 8, small
batches): the benchmarks' and ahead-of-time checks' size preset.
"""
import ml_collections

# The pipeline in its canonical order; `config.stages` selects a subset.
ALL_STAGES = "convert,embed,discover,score,synth,train,export,eval,segment,report"


SIZES = ("paper", "small")


def get_config(size: str = "paper") -> ml_collections.ConfigDict:
  if size not in SIZES:
    raise ValueError(f"configs/default.py:{size}: choose one of {SIZES}")
  c = ml_collections.ConfigDict()
  c.seed = 0  # Root PRNG seed; every stage folds in its own name.
  c.stages = "convert,discover,score,synth,train,export,eval,report"  # Comma-separated, run in canonical order; synth writes pairs to inspect (report).
  c.force = False  # Re-run selected stages even if their outputs exist; accept a changed config.

  # Multi-host start (jax.distributed.initialize).
  c.distributed = ml_collections.ConfigDict()
  c.distributed.initialize = "auto"  # 'auto' (from the environment), 'yes' or 'no'.
  c.distributed.coordinator_address = ""  # host:port; empty lets JAX detect it (TPU, SLURM, MPI).
  c.distributed.num_processes = 0  # 0 lets JAX detect it.
  c.distributed.process_id = -1  # -1 lets JAX detect it.

  # Logging.
  c.log = ml_collections.ConfigDict()
  c.log.progress_every_s = 10.0  # Seconds between progress lines (rate, ETA) of long loops.
  c.log.score_chunks = 4  # Device calls the score stage splits its candidates into (progress after each; scores unchanged).
  c.log.third_party_info = False  # Also show orbax/JAX/TF INFO lines (off: their warnings and errors only).

  # Section 1: the generator.
  c.generator = ml_collections.ConfigDict()
  c.generator.arch = "biggan"  # Generator kind (docs/generators.md): 'biggan' (BigBiGAN), 'builtin' (demo), 'stylegan2', 'dcgan', ... or 'package.module:name'.
  c.generator.source = "tfhub"  # One of the kind's sources; 'biggan': 'tfhub', 'torch' (authors' BigBiGAN_x1.pth), 'random' (tests).
  c.generator.handle = "https://tfhub.dev/deepmind/bigbigan-resnet50/1"  # TF-Hub URL, local dir or .tar.gz.
  c.generator.torch_checkpoint = ""  # Path of BigBiGAN_x1.pth when arch='biggan' and source='torch' (other kinds read `checkpoint`).
  c.generator.checkpoint = ""  # Checkpoint of the other kinds: StyleGAN2 .pkl / .pt, ImageNet BigGAN G*.pth, BigGAN-deep folder, a DCGAN .pt/.pth/.tar/.whl.
  c.generator.output_activation = "tanh"  # 'dcgan' kind: the nonlinearity after its last layer, 'tanh' or 'sigmoid' (no tensor stores it).
  c.generator.latent_space = "z"  # Space the directions live in: 'z', or 'w' / 'w+' where the kind has them (StyleGAN2).
  c.generator.num_classes = 1000  # Classes of a conditional kind's 'random' source (checkpoints carry theirs).
  c.generator.classes = ""  # Class-conditional kinds: '' or 'all', one id ('207') or a list ('1,5,9'); one drawn per latent.
  c.generator.truncation = 1.0  # The kind's own: StyleGAN2's psi (w_avg + psi (w - w_avg)); ImageNet BigGAN's t (t * N(0,1) cut to [-2, 2]).
  c.generator.noise_mode = "const"  # Noise inputs of a kind that has them (StyleGAN2): 'const' stored maps, 'random' per image (shared by G(z), G(z+h)), 'none'.
  c.generator.resolution = 128  # Output side in pixels.
  c.generator.z_dim = 120  # Latent size; 6 chunks of 20 for BigGAN-128.
  c.generator.ch = 96  # Base channel width (BigGAN G_ch).
  c.generator.shared_dim = 128  # Class-embedding width of the conditional BN.
  c.generator.attention_resolution = 64  # Self-attention after the block at this size; 0 = none.
  c.generator.bn_eps = 1e-4  # Batch-norm epsilon.
  c.generator.sn_eps = 1e-4  # Spectral-norm epsilon.
  c.generator.dtype = "float32"  # 'float32' or 'bfloat16' activations (params stay fp32).
  c.generator.latent_prior = ""  # z's distribution: '' = the kind's own (N(0, I) for the built-in kinds), 'normal', 'uniform' U(-b, b) or 'truncated_normal' (N(0, 1) cut to [-b, b]); docs/generators.md.
  c.generator.latent_bound = 1.0  # b of the 'uniform' and 'truncated_normal' priors.
  c.generator.matmul_precision = "highest"  # float32 matmuls/convs: 'highest' (full fp32, default), 'high' (TPU: 3 bf16 passes; GPU: TF32), 'default' (TPU: 1 bf16 pass; GPU: TF32).

  # Conversion of the TF-Hub / PyTorch checkpoint.
  c.convert = ml_collections.ConfigDict()
  c.convert.verify = True  # Compare with the module's own signatures before writing.
  c.convert.tolerance = 1e-4  # Max |flax - tf| in fp32.
  c.convert.encoder = True  # Also convert the encoder (written only if it verifies against `encode`).
  c.convert.use_ema = True  # Use the weights' `/ema_0.9999` copies (the module's own choice for sampling).
  c.convert.bn_stats = "auto"  # 'raw' accumulated_mean/var, 'divide' by accumulation_counter, or 'auto' (the one matching `generate`).
  c.convert.sn_normalize = "auto"  # SN's normalize: 'max' x/max(|x|,eps), 'add' x/(|x|+eps), or 'auto' (the one matching).
  c.convert.verify_batch = 4  # Latents (and encoder images) compared with the module's signatures.
  c.convert.encoder_bn_eps = 1e-4  # BatchNorm epsilon assumed for the encoder (checked by the verification).

  # Section 5: encoder embeddings for E-BigBiGAN sampling.
  c.embed = ml_collections.ConfigDict()
  c.embed.source = "auto"  # 'flax' (W/encoder), 'tfhub' (the module's `encode`), 'auto' (flax if W/encoder exists), 'file'.
  c.embed.file = ""  # Precomputed latents (.npy, e.g. the authors' BigBiGAN_CUB_train_z.npy) for source='file'.
  c.embed.dataset = ""  # TFDS name or folder of images to encode.
  c.embed.data_dir = ""  # TFDS data dir; empty = TFDS default.
  c.embed.split = "train"  # Split of the TFDS dataset.
  c.embed.output = "z_sample"  # 'z_sample' (paper) or 'z_mean'.
  c.embed.batch_size = 64  # Images per encoder call.
  c.embed.image_size = 256  # Encoder input: shorter side to 256, centre crop.
  c.embed.parts_every = 100  # Batches per saved part (resume granularity).

  # Section 2: direction discovery (Voynov & Babenko 2020) or SeFa.
  c.directions = ml_collections.ConfigDict()
  c.directions.source = "discover"  # 'discover', 'sefa', or 'file' (authors' bg_direction.pth / .npy).
  c.directions.file = ""  # Path of a direction file when source='file'.
  c.directions.num_directions = 120  # K.
  c.directions.deformator = "ortho"  # 'ortho', 'linear', 'projective', 'random', 'id'.
  c.directions.deformator_init_std = 0.001  # S ~ 0.001 * N(0, 1) for 'ortho'.
  c.directions.reconstructor = "resnet18"  # 'lenet' (small images) or 'resnet18' (128 px).
  c.directions.lenet_width = 2  # LeNet widths 3w, 8w, 60w (authors' w = 2).
  c.directions.resnet_width = 64  # ResNet-18 stage widths w, 2w, 4w, 8w (torchvision w = 64).
  c.directions.bn_momentum = 0.9  # Reconstructor BatchNorm running-average decay (PyTorch's momentum 0.1).
  c.directions.bn_eps = 1e-5  # Reconstructor BatchNorm epsilon (PyTorch default).
  c.directions.steps = 100_000  # Training steps.
  c.directions.batch_size = 32  # Latents per step.
  c.directions.learning_rate = 1e-4  # Adam, deformator and reconstructor.
  c.directions.max_shift = 6.0  # eps ~ U[-6, 6].
  c.directions.min_shift = 0.5  # |eps| < 0.5 pushed to +-0.5.
  c.directions.label_weight = 1.0  # Cross-entropy weight on k.
  c.directions.shift_weight = 0.25  # L1 weight on eps.
  c.directions.checkpoint_every = 1000  # Steps between checkpoints.
  c.directions.keep_checkpoints = 2  # Checkpoints kept in W/checkpoints/discover.
  c.directions.strip_every = 10_000  # Steps between image strips (W/discover_strips); 0 = only at the end.
  c.directions.strip_shifts = 9  # Strip columns: t evenly spaced in [-max_shift, max_shift].
  c.directions.strip_rows = 20  # Directions per strip PNG page.
  c.directions.sefa_normalize = True  # SeFa: unit-normalise each output row of W before W^T W (SeFa's code).
  c.directions.log_every = 100  # Steps between metric lines.

  # Section 3: scoring candidates as segmenting (paper appendix B).
  c.score = ml_collections.ConfigDict()
  c.score.shift_scale = 5.0  # Candidates are scaled x5 ...
  c.score.shift_units = "spread"  # ... in spreads (std of one coordinate) of the latent prior ('spread', 1 for N(0, I)) or 'absolute'.
  c.score.learning_rate = 0.005  # Adam on the two affine maps.
  c.score.batch_size = 4  # Latents per fitting step.
  c.score.steps = 200  # Fitting steps.
  c.score.init_noise = 0.01  # W = I + 0.01 * default init.
  c.score.heldout_batches = 4  # Batches for L_h, D_h and the class areas.
  c.score.max_one_class = 0.99  # Drop h if >= 99% of pixels fall in one class.
  c.score.top_fraction = 0.2  # Keep the top 20% by D_h ...
  c.score.top_k = 10  # ... then the 10 with the lowest L_h.
  c.score.order_by = "loss"  # Rank 1 of those 10: 'loss' (lowest L_h) or 'separation' (highest D_h).
  c.score.index = -1  # Pick a candidate by hand (row of directions.npy); -1 = config.score.choose's pick.
  c.score.choose = "objectness"  # 'objectness' (ours): the best-ranked of the top_k whose kept masks are object-like (below), else rank 1; 'paper': rank 1.
  c.score.max_border = 0.3  # Object-like: kept masks cover at most this share of the border pixels ...
  c.score.min_centre_ratio = 1.5  # ... and their central-quarter share is at least this times their border share (docs/method.md section 3).
  c.score.min_centre = 0.0  # ... and, when above 0, their central-quarter share is at least this (an object that fills the centre, as a portrait's face); 0 = off.
  c.score.objectness_samples = 128  # Synthetic pairs per shortlisted candidate for those shares (this config's synth settings).
  c.score.orient = True  # Choose the sign of h so that what brightens is the object (rule below).
  c.score.orient_rule = "border"  # 'border': flip h if what brightens covers more of the image border than of the inside; 'minority': flip if > half the pixels brighten.
  c.score.orient_tolerance = 2.0 / 255  # 'minority': gray rise that counts as "visibly brighter" (one 8-bit level).
  c.score.candidate_batch = 0  # Candidates fitted at once (vmap); 0 = all, else lax.map over chunks (memory).
  c.score.strip_samples = 3  # Latents (rows) per top-k strip in W/strips.
  c.score.strip_steps = 2  # Strip columns G(z + t h), t = -strip_steps..strip_steps (h = scaled shift).

  # Sections 4-6: latent sampling, mask rule, filters.
  c.synth = ml_collections.ConfigDict()
  c.synth.latents = "prior"  # 'prior' or 'embeddings'.
  c.synth.truncation = 0.0  # Resample |z_i| above this for 'prior'; 0 = none.
  c.synth.embedding_noise = 0.2  # alpha: 0.2 for dataset embeddings, 0 for ImageNet.
  c.synth.mask_rule = "lighting"  # 'lighting', 'mean_thr' (Flowers) or 'affine'.
  c.synth.shift_radius = 5.0  # r in h = r * h_bg / ||h_bg|| ...
  c.synth.shift_units = "spread"  # ... in spreads of the latent prior ('spread', 1 for N(0, I)) or 'absolute'.
  c.synth.oversample = 1.5  # Generate this many times the batch, keep the filtered.
  c.synth.max_rounds = 16  # Generate rounds until the batch is full, at most this many (1 = one round); 16 fills batches at a 10% keep rate (docs/batch_filling.md).
  c.synth.max_starved_batches = 20  # Stop when this many batches in a row are nearly empty.
  c.synth.starved_fraction = 0.05  # "Nearly empty": fewer kept than this fraction of slots.
  c.synth.size_filter = True  # Drop samples with foreground fraction > max_foreground.
  c.synth.max_foreground = 0.5  # Size-filter threshold.
  c.synth.strict_size = False  # True: also drop fraction == max_foreground (authors' code keeps < 0.5).
  c.synth.histogram_filter = True  # Section 6 histogram filter.
  c.synth.histogram_rule = "authors"  # 'authors' (their code: >= 2 maxima; default, see docs/method.md section 6) or 'paper' (its text: no interior maximum; keeps ~0% of samples).
  c.synth.histogram_bins = 12  # Bins over [-1, 1].
  c.synth.histogram_window = 3  # Moving-average window.
  c.synth.pass_rate_samples = 256  # Pairs drawn to measure what share each filter keeps (score, train); 0 = skip.
  c.synth.components_filter = True  # Remove small connected components.
  c.synth.connectivity = 4  # 4 (paper) or 8 (authors' code, skimage default).
  c.synth.min_component_ratio = 0.2  # Drop components with |M_i| < 0.2 |M_1|.
  c.synth.strict_ratio = False  # True: also drop |M_i| == 0.2 |M_1| (authors' code).
  c.synth.fill_holes = False  # Not in the paper: fill the holes a mask encloses (after the components filter, before the size filter).

  # Stage `synth`: synthetic (image, mask) pairs written to disk.
  c.export = ml_collections.ConfigDict()
  c.export.num_pairs = 1000  # Pairs written.
  c.export.output_dir = "synthetic"  # Folder under the workdir: images/, masks/, index.csv, summary.json.
  c.export.batch_size = 64  # Candidates generated per device call.
  c.export.include_rejected = False  # Also write filter-rejected candidates (index.csv says why).
  c.export.max_candidates_factor = 20.0  # Give up after num_pairs x this candidates.

  # Section 7: the U-Net.
  c.unet = ml_collections.ConfigDict()
  c.unet.width = 64  # Channels of the first DoubleConv (64 in the paper).
  c.unet.dtype = "float32"  # Activation dtype, 'float32' or 'bfloat16'; params, BN statistics and loss stay fp32.
  c.unet.bn_momentum = 0.9  # Running-average decay of BatchNorm (PyTorch's momentum 0.1).
  c.unet.bn_eps = 1e-5  # BatchNorm epsilon (PyTorch default, authors' code).

  c.train = ml_collections.ConfigDict()
  c.train.steps = 12_000  # Total steps.
  c.train.batch_size = 95  # Global batch, split over all devices.
  c.train.learning_rate = 1e-3  # Adam.
  c.train.decay_steps = (8000,)  # Steps at which lr is multiplied by decay_factor.
  c.train.decay_factor = 0.2  # x0.2 at step 8000.
  c.train.log_every = 100  # Steps between metric fetches.
  c.train.eval_every = 1000  # Steps between hold-out evaluations.
  c.train.checkpoint_every = 1000  # Steps between (async) checkpoints.
  c.train.steps_per_call = 1  # Steps per call (TPU/GPU: one XLA while loop; CPU: a host loop over the one-step program); a call stops at log/eval/checkpoint steps; results identical for any value.
  c.train.keep_checkpoints = 3  # Checkpoints kept.
  c.train.holdout_size = 1000  # Synthetic hold-out samples.
  c.train.holdout_seed = 1  # Fixed seed of the hold-out set.
  c.train.shift_augment = 0.0  # Random shift of each pair by up to this fraction of the side (not in the paper); 0 = off.
  c.train.photometric_augment = 0.0  # Random relighting and recolouring of each image, of this strength (train/augment.py; not in the paper); 0 = off.
  c.train.min_kept_fraction = 0.05  # Refuse to train when fewer pairs pass every filter (measured first, W/filter_rates.json); 0 = train anyway.
  c.train.max_border = 0.5  # Refuse to train when the kept masks cover more than this share of the image border (background or lighting, not objects; measured with the pass rates); 1 = train anyway.
  c.train.synth_chunks = 0  # Each step's batch = this many synthesize() calls on folded keys; 0 = one per device (a fixed value > 0 makes the data stream independent of the device count).

  # Stage `export`: the trained U-Net as W/export/unet.onnx and W/export/saved_model/ (docs/export.md).
  c.model_export = ml_collections.ConfigDict()
  c.model_export.onnx_opset = 23  # ONNX opset of unet.onnx (jax2onnx's default; onnxruntime >= 1.20 runs it).
  c.model_export.tf_platforms = "cpu,cuda"  # Comma-separated platforms the SavedModel's XLA program is compiled for (cpu, cuda, rocm, tpu).
  c.model_export.check_images = 2  # Random images run through each export and the JAX model before the files appear.
  c.model_export.tolerance = 1e-4  # Largest allowed |export - JAX| probability on those images; above it the stage fails.

  # Sections 8-9: evaluation on real images.
  c.eval = ml_collections.ConfigDict()
  c.eval.datasets = ""  # Comma-separated: ecssd, duts_te, duts_tr, dut_omron, cub, flowers, folder:<images>:<masks>, folder:<root>.
  c.eval.optional_datasets = ""  # Same form; evaluated when their files exist, else one log and one report line say what is missing.
  c.eval.data_dir = ""  # TFDS data dir (prepared datasets); empty = TFDS's default (~/tensorflow_datasets).
  c.eval.manual_dir = ""  # Raw downloads: ecssd/, duts/, dut_omron/, flowers/, cub/ (ReDO split files); empty = <data_dir>/downloads/manual.
  c.eval.allow_download = False  # Let TFDS download caltech_birds2011 (1.2 GB) for 'cub' when not prepared.
  c.eval.min_side = 8  # Skip dataset images smaller than this on a side (counted).
  c.eval.image_size = 128  # Shorter side given to the model (also the crop size of cub/flowers); used by segment too.
  c.eval.max_long_side = 1024  # Cap on the model input's longer side (extreme aspect ratios); used by segment too.
  c.eval.pad_multiple = 32  # Model inputs reflect-padded to multiples of this (>= 16 for the U-Net; bigger = fewer shapes to compile).
  c.eval.batch_size = 32  # Images per model call (per padded shape); used by segment too.
  c.eval.beta2 = 0.3  # beta^2 of F-beta.
  c.eval.thresholds = 255  # Thresholds k/255, k = 0..254, for maxF and PxAP.
  c.eval.mask_threshold = 0.5  # Prediction binarised at p > this for IoU, acc and F-beta at a fixed threshold.
  c.eval.box_thresholds = 100  # Thresholds k/100 for MaxBoxAcc (Choe et al.'s interval 0.01).
  c.eval.box_iou = 0.5  # A box is correct at IoU >= this with the best ground-truth box.
  c.eval.box_connectivity = 8  # Connectivity of MaxBoxAcc's largest component (8 like Choe et al.'s contours; or 4).
  c.eval.pxap_average = "images"  # PxAP's precision/recall: 'images' (mean per image, docs/method.md) or 'pixels' (pooled, Choe et al.'s code).
  c.eval.metrics_pixel_budget = 4_194_304  # Pixels per jitted metrics call (images batched by padded length).
  c.eval.max_images = 0  # Evaluate at most this many per dataset; 0 = all.
  # Baselines (docs/baselines.md): no training, same images, same metrics.
  c.eval.predictor = "unet"  # What eval and segment run: 'unet' (W/unet), 'centre_prior', 'wctr', or one trained on real photos: 'selftrain', 'supervised' (below).
  c.eval.baselines = "centre_prior"  # Comma-separated predictors evaluated beside it ('' = none).
  c.eval.baseline_workers = 0  # Processes running a baseline over images; 0 = all CPU cores, 1 = in-process.
  c.eval.centre_prior_sigma = 0.25  # Centre prior: Gaussian sigma as a fraction of each side.
  c.eval.wctr = ml_collections.ConfigDict()  # Zhu et al. CVPR 2014 (wCtr*, a.k.a. RBD).
  c.eval.wctr.variant = "authors"  # 'authors' (their MATLAB code's extra steps: the published rows, docs/baselines.md) or 'paper' (the paper's formulas alone).
  c.eval.wctr.pixels_per_superpixel = 600.0  # SLIC segments = H*W / this (authors' demo: 600).
  c.eval.wctr.compactness = 20.0  # SLIC compactness (authors' SLIC_Split: 20).
  c.eval.wctr.boundary_width = 8  # Boundary superpixels touch this band of pixels (authors' GetBndPatchIds: 8).
  c.eval.wctr.max_long_side = 640  # Larger images are downscaled to this for wCtr (0 = never).
  c.eval.wctr.short_side = 0  # Resize to this shorter side before wCtr (0 = own size; 128 with pixels_per_superpixel 150 scores alike, ~4x faster: docs/baselines.md).
  c.eval.wctr.min_short_side = 256  # With short_side 0: smaller images are enlarged to this shorter side first (ours: the pixel sizes above are for photos; 0 = never).
  c.eval.wctr.sigma_clr = 10.0  # Paper: sigma of geodesic weights and of the smoothness term.
  c.eval.wctr.sigma_bndcon = 1.0  # Paper (and code): BndCon -> background probability.
  c.eval.wctr.sigma_spa = 0.25  # Paper: spatial weight of the contrast (code: authors_sigma_spa).
  c.eval.wctr.mu = 0.1  # Paper (and code): constant added to smoothness weights.
  c.eval.wctr.authors_sigma_spa = 0.4  # 'authors': CalWeightedContrast's spaSigma.
  c.eval.wctr.authors_bg_lambda = 5.0  # 'authors': SaliencyOptimization's bgLambda.
  c.eval.wctr.authors_high_bndcon = 3.0  # 'authors': BndCon above this gets authors_high_weight.
  c.eval.wctr.authors_high_weight = 1000.0  # 'authors': EstimateBgProb's weight of sure background.

  # Not in the paper: U-Nets trained on real photos (gansseg_jax/train/real.py),
  # evaluated as the predictors 'selftrain' (pseudo-masks of W/unet; no real
  # mask read) and 'supervised' (a ceiling: the photos' real masks).
  c.eval.real = ml_collections.ConfigDict()
  c.eval.real.dataset = ""  # The training photos: a folder: entry (e.g. with part=1/2); must share no image with config.eval.datasets (checked).
  c.eval.real.steps = 600  # Adam steps.
  c.eval.real.batch_size = 16  # Photos per step, drawn with replacement.
  c.eval.real.learning_rate = 1e-3  # Adam; x0.2 after two thirds of the steps.
  c.eval.real.flip = True  # Random horizontal flips.
  c.eval.real.shift_augment = 0.1  # Random shifts up to this fraction of the side (reflect padding).
  c.eval.real.photometric_augment = 0.0  # Random relighting and recolouring of this strength (train/augment.py); 0 = off.
  c.eval.real.init = "unet"  # 'selftrain' starts from 'unet' (W/unet) or 'scratch'; 'supervised' always from scratch.
  c.eval.real.pseudo_threshold = 0.5  # 'selftrain': pseudo-mask = P > this, then the components filter and hole filling.
  c.eval.real.min_foreground = 0.05  # 'selftrain': photos whose pseudo-mask covers less than this of the frame are dropped ...
  c.eval.real.max_foreground = 0.9  # ... or more than this.

  c.segment = ml_collections.ConfigDict()
  c.segment.input_dir = ""  # Comma-separated image files and/or folders (any format Pillow reads).
  c.segment.recursive = False  # Also segment the images in sub-folders of listed folders (outputs mirror the tree).
  c.segment.output_dir = "segment"  # Relative to the workdir.
  c.segment.backend = "jax"  # What runs the U-Net: 'jax' (W/unet) or 'onnx' (W/export/unet.onnx in onnxruntime; stage export).
  c.segment.threshold = 0.5  # Binary mask = probability > this.
  c.segment.connectivity = 8  # Connectivity of the largest component whose box is reported (4 or 8).
  c.segment.min_side = 8  # Reject images smaller than this on a side (with a message).

  c.report = ml_collections.ConfigDict()
  c.report.num_samples = 16  # Synthetic samples shown.
  c.report.num_predictions = 16  # Predictions shown per dataset.
  if size == "small":
    _small(c)
  return c


def _small(config: ml_collections.ConfigDict) -> None:
  """Every size of the method shrunk; its rules and ratios unchanged."""
  config.generator.update(resolution=32, ch=4, shared_dim=8,
                          attention_resolution=0)
  config.unet.update(width=8)
  config.train.update(batch_size=16)
  config.directions.update(resnet_width=8, batch_size=16)
  config.score.update(steps=4, heldout_batches=1)
  config.export.update(batch_size=16)
  config.embed.update(image_size=64, batch_size=16)
  config.eval.update(batch_size=16)
