#!/usr/bin/env bash
# Run gansseg_jax on a Cloud TPU VM: one host (v5litepod-8) or a pod slice
# (v4-32, v5litepod-64, ...). Every gcloud command addresses all workers
# (--worker=all); JAX finds the other hosts itself (config.distributed
# .initialize='auto' reads TPU_WORKER_HOSTNAMES), and every host runs the
# same command on its own chips.
#
# Usage (from the repository root):
#   launch/tpu_vm.sh create  NAME ZONE ACCELERATOR [RUNTIME_VERSION]
#   launch/tpu_vm.sh install NAME ZONE
#   launch/tpu_vm.sh run     NAME ZONE CONFIG WORKDIR [--config.x=y ...]
#   launch/tpu_vm.sh logs    NAME ZONE [WORKER]
#   launch/tpu_vm.sh stop    NAME ZONE
#   launch/tpu_vm.sh ssh     NAME ZONE [WORKER]
#   launch/tpu_vm.sh delete  NAME ZONE
# Example:
#   launch/tpu_vm.sh create gansseg us-central2-b v4-32
#   launch/tpu_vm.sh install gansseg us-central2-b
#   launch/tpu_vm.sh run gansseg us-central2-b configs/saliency.py \
#       /mnt/shared/runs/saliency --config.train.batch_size=96
#
# install copies this checkout (the files git tracks) to ~/gansseg_jax on
# every worker and installs it with the `tpu` and `tf` extras (the `tf` one
# converts from TF-Hub and reads TFDS datasets) in ~/gansseg_jax/.venv
# (Python 3.11, from apt when the image lacks it).
# run starts `python -m gansseg_jax.main` on every worker in the background
# (it survives the ssh session; output in ~/gansseg_jax/run.log, see logs).
# stop sends SIGTERM to it on every worker: the training loop saves a
# checkpoint on all hosts and exits; `run` again resumes from it.
# WORKDIR must be one folder that all workers see (an NFS / Filestore or
# gcsfuse mount at the same path), since every host writes its part of
# each checkpoint there; on a single-host TPU VM a local path is fine.
# The global batch (config.train.batch_size) must divide by the number of
# chips: 95 (the paper's) does not, use e.g. 96 or 128.
# Optional environment: PROJECT (gcloud --project).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}
[[ $# -ge 3 ]] || usage
action=$1 name=$2 zone=$3
shift 3
gc=(gcloud compute tpus tpu-vm)
where=(--zone="$zone")
[[ -n "${PROJECT:-}" ]] && where+=(--project="$PROJECT")

case "$action" in
  create)
    [[ $# -ge 1 ]] || usage
    "${gc[@]}" create "$name" "${where[@]}" --accelerator-type="$1" \
      --version="${2:-tpu-ubuntu2204-base}"
    ;;
  install)
    archive=$(mktemp --suffix=.tar.gz)
    trap 'rm -f "$archive"' EXIT
    git ls-files -z | tar --null -czf "$archive" -T -
    "${gc[@]}" scp "$archive" "$name":gansseg_jax.tar.gz "${where[@]}" \
      --worker=all
    "${gc[@]}" ssh "$name" "${where[@]}" --worker=all --command='
      set -e
      mkdir -p ~/gansseg_jax && tar -xzf ~/gansseg_jax.tar.gz -C ~/gansseg_jax
      if ! command -v python3.11 > /dev/null; then
        sudo apt-get update -qq
        sudo apt-get install -y -qq python3.11 python3.11-venv
      fi
      cd ~/gansseg_jax && python3.11 -m venv .venv
      .venv/bin/pip install --quiet --upgrade pip
      .venv/bin/pip install --quiet -e ".[tpu,tf]"
      .venv/bin/python -c "import jax; print(jax.local_devices())"'
    ;;
  run)
    [[ $# -ge 2 ]] || usage
    config=$1 workdir=$2
    shift 2
    extra=""
    for arg in "$@"; do extra+=" $(printf %q "$arg")"; done
    "${gc[@]}" ssh "$name" "${where[@]}" --worker=all --command="
      cd ~/gansseg_jax && nohup .venv/bin/python -m gansseg_jax.main \
        --config=$(printf %q "$config") \
        --workdir=$(printf %q "$workdir")${extra} \
        > run.log 2>&1 < /dev/null & echo \$! > run.pid"
    ;;
  logs)
    "${gc[@]}" ssh "$name" "${where[@]}" --worker="${1:-0}" \
      --command='tail -n 50 -f ~/gansseg_jax/run.log'
    ;;
  stop)
    "${gc[@]}" ssh "$name" "${where[@]}" --worker=all \
      --command='kill -TERM "$(cat ~/gansseg_jax/run.pid)"'
    ;;
  ssh)
    "${gc[@]}" ssh "$name" "${where[@]}" --worker="${1:-0}"
    ;;
  delete)
    "${gc[@]}" delete "$name" "${where[@]}" --quiet
    ;;
  *)
    usage
    ;;
esac
