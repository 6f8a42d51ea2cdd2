#!/usr/bin/env bash
# `make quickstart`: offline, from a fresh clone, in a few minutes of CPU.
#   1. writes a Pendulum-v1 dataset of mixed quality (src/dt/envs/pendulum.py) as a local Minari dataset;
#   2. trains DT and BC on it, evaluating 5 target returns after every epoch (conf/experiment/quickstart.yaml);
#   3. writes the report (tables and plots) with dt.report.
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${QUICKSTART_DIR:-outputs/quickstart}
RUNS="$OUT/runs/$(date +%Y-%m-%d_%H-%M-%S)"
export MINARI_DATASETS_PATH="$(pwd)/$OUT/minari" WANDB_MODE="${WANDB_MODE:-offline}" WANDB_SILENT=true

"$PYTHON" -m dt.envs.pendulum --root "$OUT/minari"
"$PYTHON" -m dt.train -m experiment=quickstart hydra.sweep.dir="$RUNS"
"$PYTHON" -m dt.report "$RUNS"
echo "W&B offline runs (upload with \`wandb sync <folder>\`):"
ls -d "$RUNS"/*/wandb/offline-run-*
