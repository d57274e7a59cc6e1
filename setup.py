"""gansseg_jax: unsupervised object segmentation with off-the-shelf GANs, in JAX.

Pins are a set that installs and works together on Python 3.11 and 3.12
(`make install-check` installs every extras combination the README offers in
throwaway venvs and imports each optional dependency; docs/install.md has its
latest table). CPU is the default install; `cuda` / `tpu` pull jax's own
extras.
"""
import setuptools

JAX_VERSION = "0.10.2"

CORE = [
    f"jax=={JAX_VERSION}",
    f"jaxlib=={JAX_VERSION}",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "chex==0.1.92",
    "numpy==2.3.4",
    "absl-py==2.5.1",
    "ml-collections==1.1.0",
    # clu's metric writers import tensorflow + tensorboard lazily; without the
    # `tf` extra gansseg_jax writes metrics.jsonl only (see monitoring.py).
    "clu==0.0.12",
    "pillow==13.0.0",
    "scipy==1.17.1",
    # SLIC superpixels and Lab colour of the wCtr baseline (eval/baselines).
    "scikit-image==0.25.2",
]

# The `export` stage's ONNX converter. Installed after the `export` extra with
# `pip install --no-deps` (the Makefile does): its metadata asks for
# orbax-checkpoint<0.11.37, against the pin above, though it never imports
# orbax; what it does import is in the extra (and CORE). gansseg_jax/infra/optional.py
# names the same pin in its error message.
JAX2ONNX = "jax2onnx==0.17.1"

EXTRAS = {
    "tf": [
        "tensorflow-cpu==2.21.0",
        "tensorflow-hub==0.16.1",
        "tensorflow-datasets==4.9.10",
        "tensorboard==2.21.0",
        # TFDS 4.9.10 imports it when it prepares a dataset, on every Python.
        "importlib_resources==7.1.0",
        # tensorflow-hub 0.16.1 (the newest) runs `from pkg_resources import
        # parse_version` when imported. setuptools 82 dropped pkg_resources;
        # Python 3.12+ venvs have no setuptools and torch 2.13 asks for
        # setuptools>=77.0.3, so without this pin pip installs the newest
        # setuptools and `import tensorflow_hub` fails. 80.9.0 meets torch's
        # floor and is below the <81 that pkg_resources' own warning names.
        "setuptools==80.9.0",
    ],
    "test": [
        "pytest==9.2.0",
        "pytest-xdist==3.8.0",
        "hypothesis==6.170.15",
        "pysodmetrics==1.6.2",
    ],
    # The `export` stage (with the `tf` extra for the SavedModel) and
    # `segment --config.segment.backend=onnx`; plus JAX2ONNX, see above.
    "export": [
        "onnx==1.23.2",
        "onnx-ir==1.1.0",
        "onnxruntime==1.31.1",
        "sympy==1.14.0",
    ],
    # `make browser-check`: drives Debian's chromium (tools/browser_check.py).
    "browser": ["playwright==1.65.2"],
    # The golden-output tools (tools/make_*_golden.py) and the tests that
    # write .pth files with torch; .pth files are read without it.
    "torch": ["torch==2.13.0"],
    "cuda": [f"jax[cuda12]=={JAX_VERSION}"],
    "tpu": [f"jax[tpu]=={JAX_VERSION}"],
}

setuptools.setup(
    name="gansseg_jax",
    version="0.1.0",
    description=(
        "Big GANs Are Watching You (Voynov, Morozov, Babenko) in JAX/Flax: "
        "segmentation masks from a GAN latent direction, a U-Net trained on them."
    ),
    python_requires=">=3.11,<3.13",
    packages=setuptools.find_packages(include=["gansseg_jax", "gansseg_jax.*"]),
    package_data={"gansseg_jax": ["assets/**/*"]},
    install_requires=CORE,
    extras_require=EXTRAS,
)
