"""Procedural object-centric scenes with exact masks: the demo's built-in data.

One object per image on a textured background. Scene `i` of seed `s` is a pure
function of `(s, i)` (its key is `fold_in(key(s), i)`), so any slice of the
stream can be rendered alone, at any resolution: every pattern is a function
of continuous image coordinates and the mask is the shape test at pixel
centres, with no anti-aliasing, so the mask is exactly the set of pixels
painted with the object's appearance.

Coordinates: x (right) and y (down) in [-1, 1], pixel (row, col) of an
R x R image has its centre at x = (2 col + 1) / R - 1, y = (2 row + 1) / R - 1.

Factors, each drawn from its own key so they vary independently:
- outline: ellipse, star-shaped polygon (3-8 vertices) or smooth blob
  (radius modulated by harmonics 2..5), with centre, size, aspect, rotation;
- object appearance: two HSV colours mixed by a pattern (plain, stripes,
  spots, marbled noise) drawn in the object's own frame, and sphere-like
  Lambert shading from a random light direction;
- background appearance: two colours mixed by a pattern (gradient, stripes,
  checker, cloudy noise) plus fine grain and a linear light falloff;
- illumination: object gain exp(g + c), background gain exp(g - c), with
  g ~ U[-GLOBAL_LOG_GAIN, +] and c ~ U[-CONTRAST_LOG_GAIN, +]. The contrast c
  (a lit subject on a darker scene, or the reverse) is the largest single
  factor of variation: this is what lets a GAN trained on these scenes learn
  a latent direction that brightens the object and darkens the background,
  the "segmenting" direction of docs/method.md sections 3-4.

Radiance is clipped to [0, 1] and mapped to [-1, 1] (images NHWC float32).
The colour values are low enough that under 1% of pixels clip: an object or
background lit to flat white no longer changes with the contrast, and a GAN
trained on scenes with many of those learns the white ones as a mode of
their own instead of along the contrast direction.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SHAPE_KINDS = ("ellipse", "polygon", "blob")
MAX_VERTICES = 8  # Polygons have 3..MAX_VERTICES vertices.
BLOB_HARMONICS = 4  # Blob radius harmonics k = 2 .. 1 + BLOB_HARMONICS.
NUM_WAVES = 6  # Sinusoids summed by the noise patterns.
OBJECT_PATTERNS = ("plain", "stripes", "spots", "marble")
BACKGROUND_PATTERNS = ("gradient", "stripes", "checker", "clouds")
GLOBAL_LOG_GAIN = 0.1  # g ~ U[-0.1, 0.1]: light on the whole scene.
CONTRAST_LOG_GAIN = 0.75  # c ~ U[-0.75, 0.75]: object gain / background gain = exp(2c).
# Pattern frequencies: radians per unit of the object's frame (one semi-axis)
# or of the image (half its side).
OBJECT_WAVE_FREQUENCY = (2.0, 5.0)
BACKGROUND_WAVE_FREQUENCY = (1.0, 3.5)
GRAIN_FREQUENCY_SCALE = 2.0  # The grain's waves: the background's, this much finer.
MAX_GRAIN = 0.02  # Grain amplitude ~ U[0, MAX_GRAIN].
OBJECT_SIZE = (0.45, 0.85)  # Major semi-axis ~ U[OBJECT_SIZE], in half image sides.
OBJECT_ASPECT = (0.55, 1.0)  # Minor / major semi-axis ~ U[OBJECT_ASPECT].
CENTRE_RANGE = 0.35  # Object centre ~ U[-CENTRE_RANGE, CENTRE_RANGE]^2.
OBJECT_VALUE = (0.35, 0.65)  # HSV value (brightness) range of the object's colours.
BACKGROUND_VALUE = (0.25, 0.55)  # HSV value range of the background's colours.
MAX_FALLOFF = 0.15  # Background light falloff gradient ~ U[-MAX_FALLOFF, +]^2.


class SceneLayout(NamedTuple):
  """Every random number of one scene (leading batch axis when batched)."""
  kind: jax.Array  # int32 index into SHAPE_KINDS.
  centre: jax.Array  # [2] (x, y).
  angle: jax.Array  # Rotation of the object frame, radians.
  axes: jax.Array  # [2] semi-axes (a along the frame's x, b along its y).
  vertices: jax.Array  # [MAX_VERTICES, 2] polygon in the unit frame; repeats pad.
  harmonic_amplitudes: jax.Array  # [BLOB_HARMONICS].
  harmonic_phases: jax.Array  # [BLOB_HARMONICS].
  object_colours: jax.Array  # [2, 3] RGB albedos in [0, 1].
  object_pattern: jax.Array  # int32 index into OBJECT_PATTERNS.
  object_waves: jax.Array  # [NUM_WAVES, 3]: frequency (x, y) and phase.
  light: jax.Array  # [3] unit light direction, z towards the viewer.
  ambient: jax.Array  # Shading floor in [0, 1].
  background_colours: jax.Array  # [2, 3].
  background_pattern: jax.Array  # int32 index into BACKGROUND_PATTERNS.
  background_waves: jax.Array  # [NUM_WAVES, 3].
  grain: jax.Array  # Amplitude of the background's fine grain.
  falloff: jax.Array  # [2] gradient of the background's light falloff.
  object_gain: jax.Array  # exp(g + c).
  background_gain: jax.Array  # exp(g - c).


class Scenes(NamedTuple):
  """Rendered scenes (numpy, on the host)."""
  images: np.ndarray  # [N, R, R, 3] float32 in [-1, 1].
  masks: np.ndarray  # [N, R, R] float32 in {0, 1}; 1 = object.
  layouts: SceneLayout  # Batched numpy layouts, for tests and reports.


def _hsv_to_rgb(hsv: jax.Array) -> jax.Array:
  """[..., 3] HSV in [0, 1] -> RGB in [0, 1] (the standard hexcone formula)."""
  h, s, v = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
  k = jnp.mod(jnp.array([5.0, 3.0, 1.0]) + 6.0 * h, 6.0)
  return v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def _waves(key: jax.Array, low: float, high: float) -> jax.Array:
  """NUM_WAVES random plane waves: [NUM_WAVES, 3] = (fx, fy, phase)."""
  k_angle, k_freq, k_phase = jax.random.split(key, 3)
  angle = jax.random.uniform(k_angle, (NUM_WAVES,), maxval=2 * jnp.pi)
  freq = jax.random.uniform(k_freq, (NUM_WAVES,), minval=low, maxval=high)
  phase = jax.random.uniform(k_phase, (NUM_WAVES,), maxval=2 * jnp.pi)
  return jnp.stack([freq * jnp.cos(angle), freq * jnp.sin(angle), phase], -1)


def _polygon(key: jax.Array) -> jax.Array:
  """A star-shaped polygon around the origin, padded by repeating its last vertex."""
  k_count, k_angle, k_radius = jax.random.split(key, 3)
  count = jax.random.randint(k_count, (), 3, MAX_VERTICES + 1)
  slot = jnp.arange(MAX_VERTICES)
  jitter = jax.random.uniform(k_angle, (MAX_VERTICES,), minval=-0.3, maxval=0.3)
  angle = 2 * jnp.pi * (slot + jitter) / count
  radius = jax.random.uniform(k_radius, (MAX_VERTICES,), minval=0.85,
                              maxval=1.25)
  points = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)
  return jnp.where((slot < count)[:, None], points, points[count - 1])


def sample_layout(key: jax.Array) -> SceneLayout:
  """Draws one scene's layout; outline, object, background and light keys differ."""
  k_shape, k_object, k_background, k_light = jax.random.split(key, 4)
  ks = jax.random.split(k_shape, 8)
  size = jax.random.uniform(ks[2], (), minval=OBJECT_SIZE[0],
                            maxval=OBJECT_SIZE[1])
  aspect = jax.random.uniform(ks[3], (), minval=OBJECT_ASPECT[0],
                              maxval=OBJECT_ASPECT[1])
  ko = jax.random.split(k_object, 6)
  kb = jax.random.split(k_background, 7)
  kl = jax.random.split(k_light, 2)
  light_angle = jax.random.uniform(ko[4], (), maxval=2 * jnp.pi)
  light_tilt = jax.random.uniform(ko[5], (), minval=0.0, maxval=1.0)
  log_global = jax.random.uniform(kl[0], (), minval=-GLOBAL_LOG_GAIN,
                                  maxval=GLOBAL_LOG_GAIN)
  log_contrast = jax.random.uniform(kl[1], (), minval=-CONTRAST_LOG_GAIN,
                                    maxval=CONTRAST_LOG_GAIN)
  object_hsv = jax.random.uniform(
      ko[0], (2, 3), minval=jnp.array([0.0, 0.1, OBJECT_VALUE[0]]),
      maxval=jnp.array([1.0, 0.95, OBJECT_VALUE[1]]))
  # The second colour is a shifted version of the first: related but distinct.
  object_hsv = object_hsv.at[1].set(jnp.stack([
      jnp.mod(object_hsv[0, 0] + 0.5 * (object_hsv[1, 0] - 0.5), 1.0),
      object_hsv[1, 1], object_hsv[1, 2]]))
  background_hsv = jax.random.uniform(
      kb[0], (2, 3), minval=jnp.array([0.0, 0.0, BACKGROUND_VALUE[0]]),
      maxval=jnp.array([1.0, 0.8, BACKGROUND_VALUE[1]]))
  background_hsv = background_hsv.at[1].set(jnp.stack([
      jnp.mod(background_hsv[0, 0] + 0.3 * (background_hsv[1, 0] - 0.5), 1.0),
      background_hsv[1, 1], background_hsv[1, 2]]))
  return SceneLayout(
      kind=jax.random.randint(ks[0], (), 0, len(SHAPE_KINDS)),
      centre=jax.random.uniform(ks[1], (2,), minval=-CENTRE_RANGE,
                                maxval=CENTRE_RANGE),
      angle=jax.random.uniform(ks[4], (), maxval=2 * jnp.pi),
      axes=jnp.stack([size, size * aspect]),
      vertices=_polygon(ks[5]),
      harmonic_amplitudes=jax.random.uniform(
          ks[6], (BLOB_HARMONICS,)) * 0.3 / jnp.arange(2, 2 + BLOB_HARMONICS),
      harmonic_phases=jax.random.uniform(ks[7], (BLOB_HARMONICS,),
                                         maxval=2 * jnp.pi),
      object_colours=_hsv_to_rgb(object_hsv),
      object_pattern=jax.random.randint(ko[1], (), 0, len(OBJECT_PATTERNS)),
      object_waves=_waves(ko[2], *OBJECT_WAVE_FREQUENCY),
      light=jnp.stack([light_tilt * jnp.cos(light_angle),
                       light_tilt * jnp.sin(light_angle),
                       jnp.sqrt(1.0 - light_tilt**2)]),
      ambient=jax.random.uniform(ko[3], (), minval=0.3, maxval=0.7),
      background_colours=_hsv_to_rgb(background_hsv),
      background_pattern=jax.random.randint(kb[1], (), 0,
                                            len(BACKGROUND_PATTERNS)),
      background_waves=_waves(kb[2], *BACKGROUND_WAVE_FREQUENCY),
      grain=jax.random.uniform(kb[3], (), maxval=MAX_GRAIN),
      falloff=jax.random.uniform(kb[4], (2,), minval=-MAX_FALLOFF,
                                 maxval=MAX_FALLOFF),
      object_gain=jnp.exp(log_global + log_contrast),
      background_gain=jnp.exp(log_global - log_contrast),
  )


def pixel_grid(resolution: int) -> tuple[jax.Array, jax.Array]:
  """x, y [R, R] at pixel centres, both in (-1, 1)."""
  t = (2.0 * jnp.arange(resolution, dtype=jnp.float32) + 1.0) / resolution - 1.0
  return jnp.meshgrid(t, t, indexing="xy")


def object_frame(layout: SceneLayout, x: jax.Array, y: jax.Array):
  """Pixel coordinates in the object's frame, divided by its semi-axes.

  u = R(-angle) (p - centre) / axes, so the ellipse is |u| <= 1.
  """
  dx, dy = x - layout.centre[0], y - layout.centre[1]
  cos, sin = jnp.cos(layout.angle), jnp.sin(layout.angle)
  return ((cos * dx + sin * dy) / layout.axes[0],
          (-sin * dx + cos * dy) / layout.axes[1])


def _inside_polygon(vertices: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
  """Even-odd crossing test of a ray towards +u; repeated vertices add no edge."""
  a, b = vertices, jnp.roll(vertices, -1, axis=0)
  ua, va = a[:, 0, None, None], a[:, 1, None, None]
  ub, vb = b[:, 0, None, None], b[:, 1, None, None]
  straddles = (va > v) != (vb > v)
  safe_dv = jnp.where(straddles, vb - va, 1.0)
  crossing_u = ua + (v - va) * (ub - ua) / safe_dv
  crossings = jnp.sum(straddles & (u < crossing_u), axis=0)
  return crossings % 2 == 1


def shape_mask(layout: SceneLayout, x: jax.Array, y: jax.Array) -> jax.Array:
  """Boolean object mask at the points (x, y) for one layout."""
  u, v = object_frame(layout, x, y)
  radius = jnp.sqrt(u * u + v * v)
  ellipse = radius <= 1.0
  polygon = _inside_polygon(layout.vertices, u, v)
  theta = jnp.arctan2(v, u)
  k = jnp.arange(2, 2 + BLOB_HARMONICS, dtype=jnp.float32)
  modulation = jnp.sum(
      layout.harmonic_amplitudes[:, None, None]
      * jnp.cos(k[:, None, None] * theta + layout.harmonic_phases[:, None, None]),
      axis=0)
  blob = radius <= 1.0 + modulation
  return jnp.select([layout.kind == 0, layout.kind == 1], [ellipse, polygon],
                    blob)


def _wave_sum(waves: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """Sum of plane waves, normalised to unit variance: [R, R]."""
  phase = (waves[:, 0, None, None] * x + waves[:, 1, None, None] * y
           + waves[:, 2, None, None])
  return jnp.sum(jnp.sin(phase), axis=0) * np.sqrt(2.0 / NUM_WAVES)


def _object_albedo(layout: SceneLayout, u: jax.Array, v: jax.Array) -> jax.Array:
  """[R, R, 3] object colour: two colours mixed by the object's pattern."""
  w = layout.object_waves
  stripes = 0.5 + 0.5 * jnp.tanh(3.0 * jnp.sin(w[0, 0] * u + w[0, 1] * v
                                               + w[0, 2]))
  spots = jax.nn.sigmoid(8.0 * (jnp.sin(w[1, 0] * u + w[1, 2])
                                * jnp.sin(w[2, 1] * v + w[2, 2]) - 0.3))
  marble = 0.5 + 0.5 * jnp.tanh(1.5 * _wave_sum(w * jnp.array([0.5, 0.5, 1.0]),
                                                u, v))
  mix = jnp.select(
      [layout.object_pattern == 0, layout.object_pattern == 1,
       layout.object_pattern == 2], [jnp.zeros_like(u), stripes, spots], marble)
  c0, c1 = layout.object_colours[0], layout.object_colours[1]
  return c0 + mix[..., None] * (c1 - c0)


def _shading(layout: SceneLayout, u: jax.Array, v: jax.Array) -> jax.Array:
  """Lambert shading of a sphere-like bump: ambient + (1 - ambient) max(0, n.l)."""
  scale = jnp.maximum(1.0, jnp.sqrt(u * u + v * v))
  nu, nv = u / scale, v / scale
  nz = jnp.sqrt(jnp.maximum(0.0, 1.0 - nu * nu - nv * nv))
  cos, sin = jnp.cos(layout.angle), jnp.sin(layout.angle)
  # The light is given in image axes; rotate it into the object's frame.
  lu = cos * layout.light[0] + sin * layout.light[1]
  lv = -sin * layout.light[0] + cos * layout.light[1]
  lambert = jnp.maximum(0.0, nu * lu + nv * lv + nz * layout.light[2])
  return layout.ambient + (1.0 - layout.ambient) * lambert


def _background_albedo(layout: SceneLayout, x: jax.Array,
                       y: jax.Array) -> jax.Array:
  """[R, R, 3] background colour: pattern mix, fine grain, light falloff."""
  w = layout.background_waves
  direction = w[0, :2] / jnp.linalg.norm(w[0, :2])
  gradient = jnp.clip(0.5 + 0.5 * (direction[0] * x + direction[1] * y),
                      0.0, 1.0)
  stripes = 0.5 + 0.5 * jnp.tanh(2.0 * jnp.sin(w[1, 0] * x + w[1, 1] * y
                                               + w[1, 2]))
  checker = 0.5 + 0.5 * jnp.tanh(4.0 * jnp.sin(w[2, 0] * x + w[2, 2])
                                 * jnp.sin(w[2, 0] * y + w[3, 2]))
  clouds = 0.5 + 0.5 * jnp.tanh(_wave_sum(w, x, y))
  mix = jnp.select(
      [layout.background_pattern == 0, layout.background_pattern == 1,
       layout.background_pattern == 2], [gradient, stripes, checker], clouds)
  c0, c1 = layout.background_colours[0], layout.background_colours[1]
  albedo = c0 + mix[..., None] * (c1 - c0)
  grain = layout.grain * _wave_sum(
      w * jnp.array([GRAIN_FREQUENCY_SCALE, GRAIN_FREQUENCY_SCALE, 1.0]), x, y)
  falloff = 1.0 + layout.falloff[0] * x + layout.falloff[1] * y
  return (albedo + grain[..., None]) * falloff[..., None]


def render_layout(layout: SceneLayout,
                  resolution: int) -> tuple[jax.Array, jax.Array]:
  """One scene: image [R, R, 3] in [-1, 1] and mask [R, R] in {0, 1}."""
  x, y = pixel_grid(resolution)
  mask = shape_mask(layout, x, y)
  u, v = object_frame(layout, x, y)
  obj = (_object_albedo(layout, u, v) * _shading(layout, u, v)[..., None]
         * layout.object_gain)
  background = _background_albedo(layout, x, y) * layout.background_gain
  radiance = jnp.where(mask[..., None], obj, background)
  image = 2.0 * jnp.clip(radiance, 0.0, 1.0) - 1.0
  return image.astype(jnp.float32), mask.astype(jnp.float32)


def scene_keys(seed: int, indices: jax.Array) -> jax.Array:
  """Key of scene i = fold_in(key(seed), i): any scene can be made alone."""
  base = jax.random.key(seed)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(indices)


@functools.partial(jax.jit, static_argnames=("resolution",))
def render_keys(keys: jax.Array, resolution: int):
  """Batched scenes from per-scene keys: (images, masks, layouts); jit-able."""
  layouts = jax.vmap(sample_layout)(keys)
  images, masks = jax.vmap(render_layout, in_axes=(0, None))(layouts,
                                                             resolution)
  return images, masks, layouts


def render_scenes(seed: int, count: int, resolution: int, start: int = 0,
                  chunk: int = 512) -> Scenes:
  """Scenes start .. start + count - 1 of `seed`, rendered `chunk` at a time.

  Scene i is the same whatever `chunk` and `start` are: identical masks, and
  images equal up to float32 rounding (~1e-6) between differently compiled
  batch shapes. Every chunk is padded to the same shape, so only one is
  compiled.
  """
  chunk = min(chunk, count)
  parts = []
  for first in range(start, start + count, chunk):
    n = min(chunk, start + count - first)
    indices = jnp.arange(first, first + chunk, dtype=jnp.uint32)
    images, masks, layouts = render_keys(scene_keys(seed, indices), resolution)
    parts.append(jax.tree.map(lambda a, n=n: np.asarray(a[:n]),
                              (images, masks, layouts)))
  images, masks, layouts = jax.tree.map(lambda *a: np.concatenate(a), *parts)
  return Scenes(images=images, masks=masks, layouts=layouts)
