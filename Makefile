# Two commands do everything on a fresh machine with python3 and make:
#   make demo   - built-in end-to-end run on CPU, prints where the report is
#   make test   - the whole test suite (make test-fast: without the slow ones);
#                 fetches the pinned gan-face-generate wheel into weights/ first
#   make browser-check - the demo's report.html opened in headless Chromium
#                 (tools/browser_check.py: every image decodes, no console
#                 error, direction and metrics sections; page size; screenshot
#                 to docs/images/report_screenshot.png). Installs Debian's
#                 chromium (apt-get, as root) and the `browser` extra; runs
#                 the demo first (its stages are skipped when WORKDIR has them)
#   make install-check - every extras combination in throwaway venvs (slow;
#                 before a release or a pin change, see docs/install.md)
#   make tpu-check - every jitted program compiled for Cloud TPU slices on
#                 this CPU (libtpu in .venv-tpu; hours at the paper's sizes,
#                 resumable; TPU_CHECK_ARGS='--size=small' for minutes)
#   make gpu-check - the same for NVIDIA GPUs (H100, A100) on this CPU (the
#                 CUDA plugin in .venv-gpu; GPU_CHECK_ARGS passes flags)
#   make device-check - the training step measured on this machine's GPU
#                 (benchmarks/device_check.py: demo and paper steps, fp32 /
#                 TF32 / bf16, plain and looped; ms/step, MFU, peak memory;
#                 under 8 min on one H100). For a GPU machine without
#                 network: its python3 has jax + CUDA plugin, flax, optax,
#                 orbax, chex, absl; `make device-wheels` here downloads the
#                 other pure-Python pins into .device_wheels/, carry that
#                 folder with the checkout. DEVICE_CHECK_ARGS passes flags
#                 ('--size=tiny' runs on a CPU in minutes).
# make demo WORKDIR=dir DEMO_ARGS='--config.train.steps=500' changes the run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder --durations=25

TPU_VENV := .venv-tpu
TPU_PY := $(TPU_VENV)/bin/python
TPU_ENV := JAX_PLATFORMS=cpu ALLOW_MULTIPLE_LIBTPU_LOAD=1

GPU_VENV := .venv-gpu
GPU_PY := $(GPU_VENV)/bin/python
JAX_PIN = $(shell sed -n 's/^JAX_VERSION = "\(.*\)"/\1/p' setup.py)
JAX2ONNX_PIN = $(shell sed -n 's/^JAX2ONNX = "\(.*\)"/\1/p' setup.py)

# The pretrained DCGAN of the PyPI package gan-face-generate (MIT, faces of
# DigiFace-1M): configs/faces.py and the `dcgan` kind's real-weights test read
# this wheel (tests never download it; `make test` fetches it first).
FACES_WHEEL := weights/gan_face_generate-1.1.1-py3-none-any.whl
FACES_SHA256 := 24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569

# The PyTorch DCGAN-tutorial generator trained on CelebA inside the wheel of
# the PyPI package generateme 0.1.2: configs/celeba.py reads it.
CELEBA_WHEEL := weights/generateme-0.1.2-py3-none-any.whl
CELEBA_SHA256 := 3b8cdc677ebfd903905f2d806984b657fba368b429d3302fbb7810c8dfe4475b
CHECK_SHA256 = $(PY) -c "import hashlib, sys; digest = hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest(); sys.exit(0 if digest == sys.argv[2] else sys.argv[1] + ': sha256 ' + digest + ', expected ' + sys.argv[2])"

.PHONY: demo test test-fast venv clean-venv install-check tpu-check \
	gpu-check weights device-wheels device-check browser-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: $(PY) setup.py
	$(PY) -m pip install --quiet -e .
	touch $@

# The export stage's converters and runtimes (jax2onnx: see setup.py's JAX2ONNX).
$(VENV)/.installed-export: $(PY) setup.py
	$(PY) -m pip install --quiet -e ".[tf,export]"
	$(PY) -m pip install --quiet --no-deps $(JAX2ONNX_PIN)
	touch $@ $(VENV)/.installed-core

$(VENV)/.installed-test: $(PY) setup.py
	$(PY) -m pip install --quiet -e ".[test,tf,export]"
	$(PY) -m pip install --quiet --no-deps $(JAX2ONNX_PIN)
	touch $@ $(VENV)/.installed-core $(VENV)/.installed-export

venv: $(VENV)/.installed-core

demo: $(VENV)/.installed-export
	$(PY) -m gansseg_jax.main --config=configs/demo.py --workdir=$(WORKDIR) $(DEMO_ARGS)
	@echo "Results: $(WORKDIR)/report.html (and report.md, eval.md, ranking.md) in $(WORKDIR)/"

CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update && apt-get install -y chromium

$(VENV)/.installed-browser: $(PY) setup.py
	$(PY) -m pip install --quiet -e ".[browser]"
	touch $@

browser-check: $(VENV)/.installed-export $(VENV)/.installed-browser $(CHROMIUM)
	$(PY) -m gansseg_jax.main --config=configs/demo.py --workdir=$(WORKDIR) $(DEMO_ARGS)
	$(PY) tools/browser_check.py $(WORKDIR)/report.html \
	  --chromium=$(CHROMIUM) --screenshot=docs/images/report_screenshot.png

$(FACES_WHEEL): | $(PY)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: \
	  gan-face-generate==1.1.1 -d weights/
	$(CHECK_SHA256) $@ $(FACES_SHA256)

$(CELEBA_WHEEL): | $(PY)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: \
	  generateme==0.1.2 -d weights/
	$(CHECK_SHA256) $@ $(CELEBA_SHA256)

weights: $(FACES_WHEEL) $(CELEBA_WHEEL)

test: $(VENV)/.installed-test $(FACES_WHEEL)
	$(PY) -m pytest $(PYTEST_ARGS) tests

test-fast: $(VENV)/.installed-test $(FACES_WHEEL)
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow" tests

$(TPU_VENV)/.installed: setup.py
	$(PYTHON) -m venv $(TPU_VENV)
	$(TPU_PY) -m pip install --quiet --upgrade pip
	$(TPU_PY) -m pip install --quiet -e ".[tpu,test]"
	touch $@

tpu-check: $(TPU_VENV)/.installed
	$(TPU_ENV) $(TPU_PY) -m pytest -q tests/test_tpu_aot.py
	$(TPU_ENV) $(TPU_PY) benchmarks/aot_tpu.py $(TPU_CHECK_ARGS)

# Compile-only: the plugin without CUDA libraries (no GPU needed).
$(GPU_VENV)/.installed: setup.py
	$(PYTHON) -m venv $(GPU_VENV)
	$(GPU_PY) -m pip install --quiet --upgrade pip
	$(GPU_PY) -m pip install --quiet -e ".[test]"
	$(GPU_PY) -m pip install --quiet "jax-cuda12-plugin==$(JAX_PIN)" \
	  "jax-cuda12-pjrt==$(JAX_PIN)"
	touch $@

gpu-check: $(GPU_VENV)/.installed
	JAX_PLATFORMS=cpu $(GPU_PY) -m pytest -q tests/test_gpu_aot.py
	$(GPU_PY) benchmarks/aot_gpu.py $(GPU_CHECK_ARGS)

# The pins device-check needs beyond a GPU machine's preinstalled JAX stack
# (pure Python wheels, from setup.py).
DEVICE_PY ?= python3
DEVICE_WHEELS := .device_wheels
DEVICE_PINS = $(shell sed -n 's/^ *"\(ml-collections==[^"]*\)",.*/\1/p; \
	s/^ *"\(clu==[^"]*\)",.*/\1/p' setup.py)

device-wheels:
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: \
	  -d $(DEVICE_WHEELS) $(DEVICE_PINS)

# Offline: the wheels from .device_wheels, the project without its deps
# (if this python cannot build it, the script still runs from the checkout).
device-check:
	@test -d $(DEVICE_WHEELS) || { echo "error: $(DEVICE_WHEELS)/ missing: \
	run 'make device-wheels' where pip reaches PyPI and carry it along"; \
	exit 2; }
	$(DEVICE_PY) -m pip install --quiet --no-index --no-deps \
	  --find-links $(DEVICE_WHEELS) $(DEVICE_PINS)
	-$(DEVICE_PY) -m pip install --quiet --no-index --no-deps \
	  --no-build-isolation -e .
	PYTHONPATH=$(CURDIR) $(DEVICE_PY) benchmarks/device_check.py \
	  $(DEVICE_CHECK_ARGS)

install-check:
	$(PYTHON) tools/install_check.py $(INSTALL_CHECK_ARGS)

clean-venv:
	rm -rf $(VENV)
