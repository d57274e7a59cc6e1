#!/usr/bin/env bash
# Run gansseg_jax on one host with all of its GPUs: one process drives every
# visible GPU (CUDA_VISIBLE_DEVICES selects them); the train step splits the
# global batch (config.train.batch_size) over them, so it must divide by the
# GPU count (the paper's 95 does not divide by 2, 4 or 8; use 96).
#
# Usage (from the repository root, after `pip install -e ".[cuda]"`):
#   launch/multigpu.sh CONFIG WORKDIR [--config.x=y ...]
# Example:
#   CUDA_VISIBLE_DEVICES=0,1 launch/multigpu.sh configs/cub.py runs/cub \
#       --config.train.batch_size=96
#
# Ctrl-C or `kill` (SIGTERM) makes the training loop save a checkpoint and
# stop; the same command resumes from the latest one in WORKDIR.
# Optional environment: PYTHON (default .venv/bin/python),
# XLA_PYTHON_CLIENT_MEM_FRACTION (default 0.9 of each GPU's memory).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
fi
config=$1 workdir=$2
shift 2
python=${PYTHON:-.venv/bin/python}
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
gpus=$("$python" -c "import jax; print(jax.device_count('gpu'))")
echo "multigpu.sh: ${gpus} GPU(s); global batch split over all of them" >&2
exec "$python" -m gansseg_jax.main --config="$config" --workdir="$workdir" \
  --config.distributed.initialize=no "$@"
