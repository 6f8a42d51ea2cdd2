#!/usr/bin/env bash
# GPU benchmark on a lent device machine (it has torch, lightning and transformers, but not our other needs).
#
# Here, once:   bash experiments/gpu_bench.sh fetch     # wheels for Python 3.12 into .whl/ (git-ignored)
#               mkdir -p .data/sb3/hopper && cp -r ../shared/minari/sb3/hopper/medium-v0 .data/sb3/hopper/
# On device, one device call each (10 minutes at most per call), carry [".whl", ".data"]:
#   bash experiments/gpu_bench.sh run [bench.py args]
#       `make bench` on CUDA: the whole table to copy into BENCHMARKS.md. Expected (unmeasured): ~20 s to install
#       and load, 2-3 min of training rounds (6 models x 5 rounds x 200 steps), <1 min sampler, 1-2 min of
#       evaluation with an untrained policy (short episodes): about 5 minutes, plus row 3d: the acting call
#       compiled with CUDA graphs (eval.compile=true, mode="reduce-overhead"), one graph per batch bucket met
#       (up to 9 for 200 envs; inductor compiles each in ~10-30 s on 16 cores, unmeasured): add --skip-sequential
#       to stay inside one 10-minute call, or --skip-compiled to leave 3d out. With a trained policy
#       (`--ckpt outputs/gpu-full/checkpoints/last.ckpt`, after `full`) episodes last ~1,000 steps and the
#       sequential row alone needs ~200,000 batch-1 steps: add --skip-sequential or --episodes 10.
#   bash experiments/gpu_bench.sh full [dt.train overrides]
#       The paper's whole run timed with `date +%s`: 10 epochs x 10k steps, 100 episodes x 2 targets evaluated
#       after every epoch. Expected (unmeasured): 15-30 minutes, more than one call allows, so run
#       `full trainer.max_epochs=1` (one epoch and one evaluation: 2-4 minutes) and multiply by 10; its
#       checkpoint lands in outputs/gpu-full/ (kept on the machine while it stays warm).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
  hydra-core==1.3.2 omegaconf==2.3.1
  gymnasium==1.4.0 farama-notifications==0.0.6
  mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 glfw==2.11.0 pyopengl==3.1.10 websockets==17.4
  minari==0.5.4
)

install() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src:$PWD" MINARI_DATASETS_PATH="$PWD/.data" MUJOCO_GL=egl
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
}

case "${1:-run}" in
fetch)
  mkdir -p .whl
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "${WHEELS[@]}"
  python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3  # sdist only; pure Python
  ;;
run)
  install
  python3 -m experiments.bench "${@:2}"
  ;;
full)
  install
  start=$(date +%s)
  python3 -m dt.train env=hopper dataset.id=sb3/hopper/medium-v0 dataset.download=false trainer=gpu logger=csv \
    trainer.max_epochs=10 trainer.limit_train_batches=10000 eval.episodes=100 hydra.run.dir=outputs/gpu-full "${@:2}"
  echo "full run: $(($(date +%s) - start)) s wall (training, the per-epoch evaluations, checkpoints)"
  ;;
*)
  echo "usage: $0 fetch | run [bench.py args] | full [dt.train overrides]" >&2
  exit 2
  ;;
esac
