#!/usr/bin/env bash
# RESULTS.md's hopper table at a CPU budget: DT vs BC vs %BC on sb3/hopper/{medium,replay}-v0, 3 seeds,
# plus DT with K=1 and delayed rewards on medium. 1,000 steps per run (2 epochs of 500, warmup 250),
# 10 evaluation episodes per target after each epoch. About 25 min of one core per DT run, 1-2 min per BC run.
#   MINARI_DATASETS_PATH=../shared/minari experiments/results_hopper_cpu.sh
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${RESULTS_DIR:-multirun/results}
M=sb3/hopper/medium-v0
R=sb3/hopper/replay-v0
BUDGET="env=hopper dataset.download=false trainer.max_epochs=2 trainer.limit_train_batches=500
  model.optim.warmup_steps=250 eval.episodes=10 logger=csv"
sweep() {  # sweep <folder> <overrides...>
  local dir=$1
  shift
  nice -n 10 "$PYTHON" -m dt.train -m $BUDGET "$@" hydra.sweep.dir="$OUT/$dir"
}
sweep dt-medium dataset.id=$M seed=0,1,2
sweep dt-replay dataset.id=$R seed=0,1,2
sweep bc model=bc dataset.id=$M,$R seed=0,1,2
sweep pctbc model=bc dataset.pct_traj=0.1 dataset.id=$M,$R seed=0,1,2
sweep dt-medium-K1 dataset.id=$M K=1 seed=0,1,2
sweep dt-medium-delayed dataset.id=$M mode=delayed seed=0,1,2
"$PYTHON" -m dt.report "$OUT" --out docs/results/hopper
