PYTHON ?= python3
MINARI_DATASETS_PATH ?= $(abspath ../shared/minari)
export MINARI_DATASETS_PATH

.PHONY: install test lint train quickstart bench bench-eval bench-atari

# CPU torch first: a bare `torch` requirement would pull gigabytes of CUDA wheels.
install:
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e ".[dev,atari]"

test:
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check src tests experiments
	$(PYTHON) -m ruff format --check src tests experiments

train:
	$(PYTHON) -m dt.train env=hopper dataset=medium mode=delayed

# Offline, no shared data: a Pendulum dataset made on the spot, DT and BC trained on it, dt.report's tables.
quickstart:
	PYTHON=$(PYTHON) experiments/quickstart.sh

bench:
	$(PYTHON) experiments/bench_train.py

# Evaluation speed on one checkpoint (CKPT=... or the newest outputs/**/last.ckpt); see BENCHMARKS.md.
bench-eval:
	$(PYTHON) experiments/bench_eval.py $(if $(CKPT),--ckpt $(CKPT)) $(BENCH_EVAL_ARGS)

# Atari data layout: bytes per step and sampler speed, frames stored once vs 4 copies (BENCHMARKS.md).
bench-atari:
	$(PYTHON) experiments/bench_atari_data.py
