#!/usr/bin/env bash
# Training on a Slurm cluster:
#   [GPUS=16] tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# GPUS (default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS, PYTHON.
#
# Preemption: on SIGTERM / SIGUSR1 (sbatch --signal=USR1@120) train.py saves the current
# iteration and exits with status 75; inside a batch job this script then requeues the
# job (scontrol requeue; the job needs --requeue), and the requeued run (SLURM_RESTART_COUNT
# > 0) continues with --resume.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
REQUEUE_STATUS=75

RESUME=()
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && [[ " ${*:5} " != *" --resume"* ]]; then
    RESUME=(--resume)
fi

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$(dirname "$0")/train.py" "${CONFIG}" --work-dir="${WORK_DIR}" \
    --launcher=slurm "${@:5}" "${RESUME[@]}"
STATUS=$?
if [ "$STATUS" -eq "$REQUEUE_STATUS" ]; then
    echo "training was preempted and saved its state in ${WORK_DIR}"
    if [ -n "${SLURM_JOB_ID:-}" ] && command -v scontrol >/dev/null 2>&1; then
        scontrol requeue "${SLURM_JOB_ID}"
    else
        echo "run the same command with --resume to continue"
    fi
fi
exit $STATUS
