#!/usr/bin/env bash
# Testing as Slurm tasks, one per GPU, with mmdet's interface:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# Same arguments, variables and srun options as mmdet 3.3.0's tools/slurm_test.sh
# (open-mmlab/mmdetection tools/slurm_test.sh @ b9467c56ad83d9599cfaf833591b8161ae2b76c9); here
# also PYTHON (default python, as tools/dist_test.sh) and paths taken from this file's folder, so
# it runs from any directory. Each task runs tools/test.py --launcher slurm (see
# tools/slurm_train.sh); the metrics are gathered over all tasks and printed once.
set -euo pipefail
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
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
    "$PYTHON" -u "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher=slurm "$@"
