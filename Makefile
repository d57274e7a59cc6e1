# Two commands do everything on a fresh machine with python3 and make:
#   make demo   - built-in end-to-end run on CPU, prints where the report is
#   make test   - the whole test suite (make test-fast: without the slow ones)
#   make install-check - every extras combination in throwaway venvs (slow;
#                 before a release or a pin change, see docs/install.md)
#   make tpu-check - every jitted program compiled for Cloud TPU slices on
#                 this CPU (libtpu in .venv-tpu; hours at the paper's sizes,
#                 resumable; TPU_CHECK_ARGS='--size=small' for minutes)
#   make gpu-check - the same for NVIDIA GPUs (H100, A100) on this CPU (the
#                 CUDA plugin in .venv-gpu; GPU_CHECK_ARGS passes flags)
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

.PHONY: demo test test-fast venv clean-venv install-check tpu-check \
	gpu-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: $(PY) setup.py
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(PY) setup.py
	$(PY) -m pip install --quiet -e ".[test,tf]"
	touch $@ $(VENV)/.installed-core

venv: $(VENV)/.installed-core

demo: $(VENV)/.installed-core
	$(PY) -m gansseg_jax.main --config=configs/demo.py --workdir=$(WORKDIR) $(DEMO_ARGS)
	@echo "Results: $(WORKDIR)/report.html (and report.md, eval.md, ranking.md) in $(WORKDIR)/"

test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS) tests

test-fast: $(VENV)/.installed-test
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

install-check:
	$(PYTHON) tools/install_check.py $(INSTALL_CHECK_ARGS)

clean-venv:
	rm -rf $(VENV)
