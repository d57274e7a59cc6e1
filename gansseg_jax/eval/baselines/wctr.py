"""wCtr*: Zhu, Liang, Wei, Sun, "Saliency Optimization from Robust Background
Detection", CVPR 2014 (the optimised weighted contrast, called RBD or wCtr in
benchmarks). Sources of every constant: docs/baselines.md.

On superpixels p_1..p_N (SLIC, about H W / pixels_per_superpixel of them):
  d_app(p, q)   Euclidean distance of the mean colours in CIE-Lab
  d_spa(p, q)   distance of the mean positions, coordinates in [0, 1]
  d_geo(p, q)   shortest path on the graph of adjacent superpixels with edge
                weight d_app (scipy.sparse.csgraph, Dijkstra)
  S(p, q)       = exp(-d_geo^2 / (2 sigma_clr^2))
  BndCon(p)     = sum_{q in Bnd} S(p, q) / sqrt(sum_q S(p, q))   (eqs. 2-5)
  w_bg(p)       = 1 - exp(-BndCon(p)^2 / (2 sigma_bndcon^2))       (eq. 7)
  wCtr(p)       = sum_q d_app(p, q) exp(-d_spa^2 / (2 sigma_spa^2)) w_bg(q)
                  (eq. 8), min-max normalised to [0, 1] = w_fg
  s             = argmin sum_i w_bg_i s_i^2 + sum_i w_fg_i (s_i - 1)^2
                  + sum_{i<j adjacent} w_ij (s_i - s_j)^2              (eq. 9)
                  w_ij = exp(-d_app^2 / (2 sigma_clr^2)) + mu
                i.e. (D - W + diag(w_bg) + diag(w_fg)) s = w_fg (scipy sparse
                solve), and s min-max normalised to [0, 1] per image.
Bnd = superpixels touching the band of `boundary_width` pixels along the
border. Variant 'authors' adds the released MATLAB code's steps: geodesic edge
weights max(0, d_app - clip) with all boundary superpixels linked, sigmas
estimated per image (EstimateDynamicParas), Gaussian weights cut at
3 sigma, sigma_spa 0.4, wCtr below Otsu's threshold set to 0, w_bg x 5 and
1000 where BndCon > 3, smoothness over 2-ring neighbours and boundary pairs.
"""
import dataclasses
from typing import Optional

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse import linalg as sparse_linalg

VARIANTS = ("paper", "authors")


@dataclasses.dataclass(frozen=True)
class Params:
  """config.eval.wctr as a picklable value (sent to worker processes); the
  values and their sources live in configs/default.py."""
  variant: str
  pixels_per_superpixel: float
  compactness: float
  boundary_width: int
  max_long_side: int
  short_side: int
  min_short_side: int
  sigma_clr: float
  sigma_bndcon: float
  sigma_spa: float
  mu: float
  authors_sigma_spa: float
  authors_bg_lambda: float
  authors_high_bndcon: float
  authors_high_weight: float

  @classmethod
  def from_config(cls, wctr_config) -> "Params":
    return cls(**{f.name: f.type(wctr_config[f.name])
                  for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class Superpixels:
  """What wCtr needs of an image's superpixels."""
  labels: np.ndarray  # int [H, W], 0..N-1
  lab: np.ndarray  # [N, 3] CIE-Lab of the mean RGB
  position: np.ndarray  # [N, 2] mean (row, col) of pixel centres / (H, W)
  adjacency: np.ndarray  # bool [N, N], 4-connected neighbours, no diagonal
  boundary: np.ndarray  # int [B] ids touching the border band


def slic_labels(image: np.ndarray, params: Params) -> np.ndarray:
  """SLIC (scikit-image, Lab, connectivity enforced): int [H, W], 0..N-1."""
  from skimage import segmentation  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  segments = max(1, round(h * w / params.pixels_per_superpixel))
  labels = segmentation.slic(image, n_segments=segments,
                             compactness=params.compactness, start_label=0,
                             enforce_connectivity=True, channel_axis=-1)
  return np.unique(labels, return_inverse=True)[1].reshape(h, w)


def describe(image: np.ndarray, labels: np.ndarray,
             boundary_width: int) -> Superpixels:
  """Mean colours, positions, adjacency and boundary set of `labels`."""
  from skimage import color  # pylint: disable=g-import-not-at-top
  h, w = labels.shape
  n = int(labels.max()) + 1
  flat = labels.ravel()
  count = np.bincount(flat, minlength=n).astype(np.float64)
  rgb = np.stack([np.bincount(flat, image[..., c].ravel().astype(np.float64),
                              n) for c in range(3)], axis=1) / count[:, None]
  lab = color.rgb2lab(rgb[None] / 255.0)[0]
  rows, cols = np.mgrid[0:h, 0:w]
  position = np.stack([np.bincount(flat, (rows.ravel() + 0.5) / h, n),
                       np.bincount(flat, (cols.ravel() + 0.5) / w, n)],
                      axis=1) / count[:, None]
  adjacency = np.zeros((n, n), bool)
  for a, b in ((labels[1:, :], labels[:-1, :]), (labels[:, 1:], labels[:, :-1])):
    differ = a != b
    adjacency[a[differ], b[differ]] = True
  adjacency |= adjacency.T
  band = np.ones((h, w), bool)
  k = max(1, int(boundary_width))
  band[k:h - k, k:w - k] = False
  return Superpixels(labels, lab, position, adjacency,
                     np.unique(labels[band]))


def pairwise_distance(x: np.ndarray) -> np.ndarray:
  """Euclidean distances between the rows of x: [N, N]."""
  return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


def gaussian(distance: np.ndarray, sigma: float, cut: bool) -> np.ndarray:
  """exp(-d^2 / (2 sigma^2)); with `cut`, 0 beyond 3 sigma (authors' code)."""
  weight = np.exp(-np.square(distance) / (2.0 * sigma * sigma))
  if cut:
    weight = np.where(distance > 3.0 * sigma, 0.0, weight)
  return weight


@dataclasses.dataclass(frozen=True)
class Sigmas:
  clip: float  # Subtracted from geodesic edge weights.
  geodesic: float  # sigma of S(p, q).
  smooth: float  # sigma of the smoothness weights w_ij.


def two_ring(adjacency: np.ndarray) -> np.ndarray:
  """Neighbours and neighbours' neighbours (the authors' A^2 + A > 0)."""
  a = adjacency.astype(np.float32)
  return ((a @ a) > 0) | adjacency


# Ours: the smallest smoothness sigma. A uniform image has every neighbour
# distance 0, so EstimateDynamicParas' sigma is 0 and its weights 0 / 0.
MIN_SMOOTH_SIGMA = 1e-6


def dynamic_sigmas(adjacency: np.ndarray, colour: np.ndarray) -> Sigmas:
  """The authors' EstimateDynamicParas: statistics of neighbour distances
  (the smoothness sigma at least MIN_SMOOTH_SIGMA)."""
  far = np.where(adjacency, colour, np.inf)
  mean_min1 = far.min(axis=1).mean()
  ring2 = two_ring(adjacency)
  np.fill_diagonal(ring2, False)
  mean_min2 = np.where(ring2, colour, np.inf).min(axis=1).mean()
  pairs = np.sort(colour[np.tril(adjacency, -1)])[::-1]
  mean_top = pairs[:max(1, round(0.01 * len(pairs)))].mean()
  geodesic = max(min(10.0, 3.0 * mean_min1, mean_top / 10.0), 5.0)
  smooth = max(min(3.0 * mean_min1, 0.2 * mean_top, 20.0), MIN_SMOOTH_SIGMA)
  return Sigmas(clip=float(mean_min2), geodesic=float(geodesic),
                smooth=float(smooth))


def geodesic_distances(edges: np.ndarray, weights: np.ndarray,
                       n: int) -> np.ndarray:
  """All-pairs shortest paths (Dijkstra) on the undirected weighted graph.

  `edges` [E, 2] with i < j, each pair once; zero weights are kept as edges.
  """
  graph = sparse.csr_matrix((weights, (edges[:, 0], edges[:, 1])),
                            shape=(n, n))
  return csgraph.shortest_path(graph, method="D", directed=False)


def upper_edges(adjacency: np.ndarray) -> np.ndarray:
  """[E, 2] pairs i < j with adjacency[i, j]."""
  return np.argwhere(np.triu(adjacency, 1))


def boundary_connectivity(sp: Superpixels, colour: np.ndarray,
                          params: Params,
                          sigmas: Sigmas) -> np.ndarray:
  """BndCon(p) of every superpixel (eq. 5), geodesic on the colour graph."""
  authors = params.variant == "authors"
  graph = sp.adjacency.copy()
  if authors:  # LinkBoundarySPs
    graph[np.ix_(sp.boundary, sp.boundary)] = True
    np.fill_diagonal(graph, False)
  edges = upper_edges(graph)
  weights = colour[edges[:, 0], edges[:, 1]]
  if authors:
    weights = np.maximum(0.0, weights - sigmas.clip)
  geo = geodesic_distances(edges, weights, len(colour))
  span = gaussian(geo, sigmas.geodesic, cut=authors)
  area = span.sum(axis=1)
  length = span[:, sp.boundary].sum(axis=1)
  return length / np.sqrt(area)


def weighted_contrast(colour: np.ndarray, position: np.ndarray,
                      background: np.ndarray, params: Params) -> np.ndarray:
  """wCtr (eq. 8), min-max normalised; authors: Otsu-thresholded."""
  authors = params.variant == "authors"
  sigma = params.authors_sigma_spa if authors else params.sigma_spa
  spatial = gaussian(pairwise_distance(position), sigma, cut=authors)
  contrast = (colour * spatial) @ background
  contrast = (contrast - contrast.min()) / (
      contrast.max() - contrast.min() + np.finfo(np.float64).eps)
  if authors and contrast.max() > contrast.min():
    from skimage import filters  # pylint: disable=g-import-not-at-top
    contrast = np.where(contrast < filters.threshold_otsu(contrast), 0.0,
                        contrast)
  return contrast


def smoothness_weights(sp: Superpixels, colour: np.ndarray, params: Params,
                       sigmas: Sigmas) -> np.ndarray:
  """w_ij of eq. 9, dense [N, N] with a zero diagonal."""
  if params.variant == "authors":  # LinkNNAndBoundary, Dist2WeightMatrix, + mu A
    linked = two_ring(sp.adjacency)
    linked[np.ix_(sp.boundary, sp.boundary)] = True
    w = np.where(linked, gaussian(colour, sigmas.smooth, cut=True), 0.0)
    w = w + params.mu * sp.adjacency
  else:
    w = np.where(sp.adjacency, gaussian(colour, sigmas.smooth, cut=False)
                 + params.mu, 0.0)
  np.fill_diagonal(w, 0.0)
  return w


def optimise(weights: np.ndarray, background: np.ndarray,
             foreground: np.ndarray) -> np.ndarray:
  """Minimiser of eq. 9: (D - W + diag(bg) + diag(fg)) s = fg, sparse solve."""
  w = sparse.csr_matrix(weights)
  system = (sparse.diags(np.asarray(w.sum(axis=1)).ravel() + background
                         + foreground) - w).tocsc()
  return sparse_linalg.spsolve(system, foreground)


def superpixel_saliency(sp: Superpixels, params: Params) -> np.ndarray:
  """wCtr* per superpixel, min-max normalised to [0, 1]."""
  n = len(sp.lab)
  if n < 2 or not sp.adjacency.any():
    return np.zeros(n)
  colour = pairwise_distance(sp.lab)
  authors = params.variant == "authors"
  sigmas = (dynamic_sigmas(sp.adjacency, colour) if authors else
            Sigmas(0.0, params.sigma_clr, params.sigma_clr))
  bndcon = boundary_connectivity(sp, colour, params, sigmas)
  background = 1.0 - np.exp(-np.square(bndcon)
                            / (2.0 * params.sigma_bndcon ** 2))
  foreground = weighted_contrast(colour, sp.position, background, params)
  bg_weight = background
  if authors:
    bg_weight = np.where(bndcon > params.authors_high_bndcon,
                         params.authors_high_weight, background)
    bg_weight = bg_weight * params.authors_bg_lambda
  s = optimise(smoothness_weights(sp, colour, params, sigmas), bg_weight,
               foreground)
  return (s - s.min()) / (s.max() - s.min() + np.finfo(np.float64).eps)


def work_size(height: int, width: int, params: Params) -> tuple[int, int]:
  """(h, w) wCtr runs at: the shorter side scaled to `short_side`, or, when
  that is 0, raised to `min_short_side` if below it (0: kept); then the
  longer side capped at `max_long_side` (0: no cap). The superpixel size and
  the border band are in pixels, made for photos a few hundred pixels
  across: at 64 px the authors' 600 px per superpixel leaves ~7 superpixels
  and the 8 px band covers 44% of the image (docs/baselines.md)."""
  short = min(height, width)
  if params.short_side > 0:
    scale = params.short_side / short
  else:
    scale = max(1.0, params.min_short_side / short)
  if params.max_long_side > 0:
    scale = min(scale, params.max_long_side / max(height, width))
  return max(1, round(height * scale)), max(1, round(width * scale))


def _resized(image: np.ndarray, params: Params) -> Optional[np.ndarray]:
  """The image at work_size (bilinear), or None when that is its own size."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  h, w = work_size(*image.shape[:2], params)
  if (h, w) == image.shape[:2]:
    return None
  return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


@dataclasses.dataclass(frozen=True)
class WCtr:
  """The baseline: uint8 RGB [H, W, 3] -> saliency float32 [H, W] in [0, 1]."""
  params: Params
  name: str = "wctr"

  def saliency(self, image: np.ndarray) -> np.ndarray:
    small = _resized(image, self.params)
    work = image if small is None else small
    labels = slic_labels(work, self.params)
    sp = describe(work, labels, self.params.boundary_width)
    values = superpixel_saliency(sp, self.params)[labels].astype(np.float32)
    if small is not None:
      from gansseg_jax.data import preprocess  # pylint: disable=g-import-not-at-top
      values = np.clip(preprocess.resize_map(values, image.shape[:2]), 0, 1)
    return values
