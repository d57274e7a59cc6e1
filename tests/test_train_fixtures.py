"""Shared pieces of the train tests, and checks of the pieces themselves.

- `disc_generate`: a tiny analytic generator, 32 px: a disc on a background;
  latent coordinate 0 brightens the disc and darkens the background, so the
  direction e_0 is a planted background direction whose lighting mask is
  exactly the disc (checked below against a numpy rasterisation).
- `tiny_config`: configs/test.py shrunk further for a few-second run.
- `write_inputs`: W/bg_direction.npy as the `score` stage would write it.
- `run_python`: a subprocess with fake CPU devices and a shared persistent
  compilation cache (so the subprocesses of one session compile once).
"""
import os
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from configs import test as test_config

RESOLUTION = 32
Z_DIM = 8
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)

# Mean colours (pre-tanh) of the disc (reddish) and the background (bluish);
# images whose z_0 < nan_below are NaN (-inf: never; the NaN test raises it).
DISC_PARAMS = {"fg": np.array([0.8, -0.5, -0.5], np.float32),
               "bg": np.array([-0.5, -0.3, 0.8], np.float32),
               "nan_below": np.array(-np.inf, np.float32)}


def disc_geometry(z):
  """Centre (cx, cy) in [-0.4, 0.4] and radius in [0, 0.9] of each disc."""
  return 0.4 * jnp.tanh(z[:, 1]), 0.4 * jnp.tanh(z[:, 2]), (
      0.45 + 0.45 * jnp.tanh(z[:, 3]))


def disc_generate(params, z):
  """z [B, 8] -> [B, 32, 32, 3] in [-1, 1]: a disc brightened by z_0.

  Disc pixels are tanh(fg + 0.3 z_4:7 + z_0), background pixels
  tanh(bg + 0.3 z_5:8 - z_0). Big discs (radius > 0.8) exceed half the image
  and are dropped by the size filter. Images with z_0 < params['nan_below']
  are all NaN (to plant a non-finite loss).
  """
  axis = jnp.linspace(-1.0, 1.0, RESOLUTION)
  yy, xx = jnp.meshgrid(axis, axis, indexing="ij")
  cx, cy, r = disc_geometry(z)
  inside = ((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2
            < (r ** 2)[:, None, None])
  fg = jnp.tanh(params["fg"] + 0.3 * z[:, 4:7] + z[:, :1])
  bg = jnp.tanh(params["bg"] + 0.3 * z[:, 5:8] - z[:, :1])
  images = jnp.where(inside[..., None], fg[:, None, None, :],
                     bg[:, None, None, :])
  poisoned = (z[:, 0] < params["nan_below"])[:, None, None, None]
  return jnp.where(poisoned, jnp.nan, images)


def background_direction() -> np.ndarray:
  return np.eye(Z_DIM, dtype=np.float32)[0]


def tiny_config():
  """configs/test.py with the disc generator's sizes and a 48-step schedule."""
  c = test_config.get_config()
  c.generator.resolution = RESOLUTION
  c.generator.z_dim = Z_DIM
  c.unet.width = 4
  c.train.steps = 48
  c.train.batch_size = 8
  c.train.decay_steps = (40,)
  c.train.log_every = 12
  c.train.eval_every = 12
  c.train.checkpoint_every = 12
  c.train.keep_checkpoints = 2
  c.train.holdout_size = 24
  c.train.synth_chunks = 4  # The same data on 1, 2 and 4 devices.
  c.log.progress_every_s = 1.0
  return c


def write_inputs(workdir: str) -> None:
  """W/bg_direction.npy (the planted direction e_0)."""
  os.makedirs(workdir, exist_ok=True)
  np.save(os.path.join(workdir, "bg_direction.npy"), background_direction())


def step_dirs(folder: str) -> list[str]:
  """The checkpoint step folders in `folder`, sorted by name (each step's
  `<step>.files.json` fingerprint record beside them left out)."""
  return sorted(n for n in os.listdir(folder) if n.isdigit())


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def python_env(cache_dir: str, devices: int = 1) -> dict[str, str]:
  """Environment of a test subprocess: CPU, `devices` fake devices, cache.

  Optimisation level 0 halves XLA's CPU compile time; runs that a test
  compares with each other all use these flags.
  """
  env = dict(os.environ)
  env.update({
      "JAX_PLATFORMS": "cpu",
      "XLA_FLAGS": (f"--xla_force_host_platform_device_count={devices} "
                    "--xla_backend_optimization_level=0"),
      "JAX_COMPILATION_CACHE_DIR": cache_dir,
      "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
      "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
      "PYTHONPATH": os.pathsep.join([REPO_DIR, TESTS_DIR]),
      "TF_CPP_MIN_LOG_LEVEL": "3",
  })
  return env


def start_python(code: str, env: dict[str, str],
                 args: tuple[str, ...] = ()) -> subprocess.Popen:
  """Starts `code` with sys.argv[1:] = args; stdout and stderr together."""
  return subprocess.Popen(
      [sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO_DIR,
      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_python(code: str, env: dict[str, str],
               timeout: float = 240) -> subprocess.CompletedProcess:
  """Runs `code` in a fresh interpreter; returns its exit code and output."""
  return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                        cwd=REPO_DIR, env=env, capture_output=True, text=True,
                        timeout=timeout)


def shared_cache_dir(tmp_path_factory) -> str:
  """One persistent compilation cache for the subprocesses of this session.

  Under pytest-xdist the workers' temporary folders share a parent that is
  new for each session; the cache goes there so every worker reuses it.
  Test modules wrap this in their own fixture (a fixture is not shared
  across modules without a conftest).
  """
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent
  path = root / "train_xla_cache"
  path.mkdir(exist_ok=True)
  return str(path)


def test_lighting_mask_of_planted_direction_is_the_disc():
  """gray(G(z + 5 e_0)) > gray(G(z)) exactly on the rasterised disc."""
  from gansseg_jax.synth import masks  # pylint: disable=g-import-not-at-top
  z = jax.random.normal(jax.random.key(0), (16, Z_DIM))
  images = disc_generate(DISC_PARAMS, z)
  shifted = disc_generate(DISC_PARAMS, z + 5.0 * background_direction())
  mask = np.asarray(masks.lighting_mask(images, shifted))
  cx, cy, r = (np.asarray(v, np.float64) for v in disc_geometry(z))
  axis = np.linspace(-1.0, 1.0, RESOLUTION)
  for i in range(len(z)):
    disc = np.zeros((RESOLUTION, RESOLUTION), bool)
    clear = np.zeros((RESOLUTION, RESOLUTION), bool)  # Off the rim by 1e-4.
    for y in range(RESOLUTION):
      for x in range(RESOLUTION):
        d2 = (axis[x] - cx[i]) ** 2 + (axis[y] - cy[i]) ** 2
        disc[y, x] = d2 < r[i] ** 2
        clear[y, x] = abs(d2 - r[i] ** 2) > 1e-4
    np.testing.assert_array_equal(mask[i][clear], disc[clear])
    assert clear.mean() > 0.9
  assert np.asarray(images).min() >= -1 and np.asarray(images).max() <= 1
