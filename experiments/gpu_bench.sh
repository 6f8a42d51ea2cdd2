#!/usr/bin/env bash
# GPU benchmark in one device call (the H200 machine has torch and lightning but not our other needs).
#
# Here, once:   bash experiments/gpu_bench.sh fetch     # wheels for Python 3.12 into .whl/ (git-ignored)
#               mkdir -p .data/sb3/hopper && cp -r ../shared/minari/sb3/hopper/medium-v0 .data/sb3/hopper/
# On device:    device run, carry [".whl", ".data"]:  bash experiments/gpu_bench.sh run
# It installs the wheels into /tmp/site, trains briefly for a checkpoint, then prints
# `make bench` and `make bench-eval` figures (CPU and CUDA rows) to copy into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
  hydra-core==1.3.2 omegaconf==2.3.1
  gymnasium==1.4.0 farama-notifications==0.0.6
  mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 glfw==2.11.0 pyopengl==3.1.10 websockets==17.4
  minari==0.5.4
)

case "${1:-run}" in
fetch)
  mkdir -p .whl
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "${WHEELS[@]}"
  python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3  # sdist only; pure Python
  ;;
run)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src" MINARI_DATASETS_PATH="$PWD/.data" MUJOCO_GL=egl
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 experiments/bench_train.py --steps 100
  python3 -m dt.train env=hopper dataset.id=sb3/hopper/medium-v0 dataset.download=false trainer=gpu logger=csv \
    trainer.max_epochs=1 trainer.limit_train_batches=2000 model.optim.warmup_steps=200 eval.episodes=10 \
    hydra.run.dir=/tmp/gpu_run
  python3 experiments/bench_eval.py --ckpt /tmp/gpu_run/checkpoints/last.ckpt --device cuda
  python3 experiments/bench_eval.py --ckpt /tmp/gpu_run/checkpoints/last.ckpt --device cpu --skip-sequential
  ;;
*)
  echo "usage: $0 fetch|run" >&2
  exit 2
  ;;
esac
