#!/usr/bin/env bash
# RESULTS.md's hopper tables at a CPU budget: 1,000 steps per run (2 epochs of 500, warmup 250), 10 evaluation
# episodes per target after each epoch, 3 seeds, two runs at a time (joblib, one torch thread each).
#   MINARI_DATASETS_PATH=../shared/minari experiments/results_hopper_cpu.sh [GROUP ...]
# GROUPs (default: all): main (DT/BC/%BC on medium and replay, DT K=1), more (DT/BC/%BC on mixed and
# medium+expert), delayed (DT normal vs delayed on medium), init (DT on medium with the official code's
# embedding init, model.net.embed_init=pytorch; compare with the delayed group's normal rows). Each group writes
# $OUT/<group> and its report in docs/results/hopper-<group> (main: docs/results/hopper), with the runs' results.json
# files kept under <report>/runs/ (small: commit them) so that dt.report can be rerun on them later:
#   python -m dt.report docs/results/hopper/runs --out docs/results/hopper
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${RESULTS_DIR:-multirun/results}
M=sb3/hopper/medium-v0
R=sb3/hopper/replay-v0
X=sb3/hopper/mixed-v0
ME=[sb3/hopper/medium-v0,sb3/hopper/expert-v0]
BUDGET="env=hopper dataset.download=false trainer.max_epochs=2 trainer.limit_train_batches=500
  model.optim.warmup_steps=250 eval.episodes=10 logger=csv hydra/launcher=joblib hydra.launcher.n_jobs=2"
sweep() {  # sweep <folder> <overrides...>
  local dir=$1
  shift
  nice -n 10 "$PYTHON" -m dt.train -m $BUDGET "$@" hydra.sweep.dir="$OUT/$dir"
}
main() {
  sweep main/dt dataset.id=$M,$R seed=0,1,2
  sweep main/bc model=bc dataset.id=$M,$R seed=0,1,2
  sweep main/pctbc model=bc dataset.pct_traj=0.1 dataset.id=$M,$R seed=0,1,2
  sweep main/dt-K1 dataset.id=$M K=1 seed=0,1,2
}
more() {
  sweep more/dt-bc model=dt,bc "dataset.id=$X,$ME" seed=0,1,2
  sweep more/pctbc model=bc dataset.pct_traj=0.1 "dataset.id=$X,$ME" seed=0,1,2
}
delayed() {
  sweep delayed/dt mode=normal,delayed dataset.id=$M seed=0,1,2
}
init() {
  sweep init/dt dataset.id=$M model.net.embed_init=pytorch experiment_name=embed_init_pytorch seed=0,1,2
}
keep_results() {  # keep_results <sweep folder> <report folder>: the runs' results files, same layout, in <report>/runs
  local from=$1 to=$2/runs
  rm -rf "$to"
  (cd "$from" && find . -name results.json) | while read -r file; do
    mkdir -p "$to/$(dirname "$file")"
    cp "$from/$file" "$to/$file"
  done
}
for group in "${@:-main more delayed init}"; do
  for g in $group; do
    "$g"
    [ "$g" = main ] && report=docs/results/hopper || report=docs/results/hopper-$g
    keep_results "$OUT/$g" "$report"
    "$PYTHON" -m dt.report "$report/runs" --out "$report"
  done
done
