#!/usr/bin/env bash
# Training as Slurm tasks, one per GPU, with mmdet's interface:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Same arguments, variables and srun options as mmdet 3.3.0's tools/slurm_train.sh
# (open-mmlab/mmdetection tools/slurm_train.sh @ 00e97308fa85d98e9049a312cee5f9a451a3f44b); here
# also PYTHON (default python, as tools/dist_train.sh) and paths taken from this file's folder, so
# it runs from any directory. GPUS > GPUS_PER_NODE spans several nodes. Each task runs
# tools/train.py --launcher slurm, which reads SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID /
# SLURM_NODELIST (and MASTER_PORT, default 29500); without CUDA the tasks use gloo.
set -euo pipefail
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "$@"
