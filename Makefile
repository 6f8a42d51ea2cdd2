PYTHON ?= python3
MINARI_DATASETS_PATH ?= $(abspath ../shared/minari)
export MINARI_DATASETS_PATH
# The CPU build of torch: pinned here and in the lock, found in TORCH_WHEELS (a bare `torch` requirement would
# pull gigabytes of CUDA wheels).
TORCH_VERSION ?= 2.13.0
TORCH_WHEELS ?= /opt/wheels
FIND_TORCH = $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS))
# TORCH: the torch build `make install` puts in (same version, TORCH_VERSION; every other package at its locked
# version). auto: cuda when `nvidia-smi` runs, cpu otherwise. cpu: the lock's CPU wheel, exactly what CI tests.
# cuda: PyPI's torch, which on Linux x86_64 is a CUDA build (its nvidia-* wheels come with it). cu<NNN> (cu126,
# cu128, ...): the build for that CUDA version from PyTorch's index, for drivers too old for PyPI's.
TORCH ?= auto
TORCH_BUILD = $(if $(filter auto,$(TORCH)),$(shell nvidia-smi >/dev/null 2>&1 && echo cuda || echo cpu),$(TORCH))
TORCH_INDEX ?= https://download.pytorch.org/whl
# The lock less its torch line: the constraints of a CUDA install (the lock holds no nvidia-* packages).
LOCK_WITHOUT_TORCH = .requirements-without-torch.lock
PIP_ARGS ?=
# Extras `make install` adds. `bench` (transformers, make bench's Hugging Face row) is left out: installed, it is
# imported by every `import lightning` (torchmetrics), ~1 s per process. CI adds it after the suite (.ci/run).
# `export` (onnx, onnxruntime, onnxscript): `python -m dt.export format=onnx` and its tests. `dashboard`
# (wandb-workspaces): `python -m dt.dashboard` and its tests.
EXTRAS ?= dev,atari,export,dashboard

.PHONY: install install-latest lock test test-fast lint train quickstart bench bench-atari

# Exactly the versions CI tested (requirements.lock; CI then runs `pip check` in its fresh venv), torch as TORCH says.
# CUDA builds: never FIND_TORCH (its +cpu wheel would win), and `torch===V` (no local label) for PyPI's build.
# cu<NNN>: only torch itself comes from PyTorch's index (--no-deps); its nvidia-* dependencies come from PyPI.
install:
	$(if $(shell echo '$(TORCH_BUILD)' | grep -Ex 'cpu|cuda|cu[0-9]+'),,$(error TORCH=$(TORCH): use auto, cpu, cuda or cu<NNN> (e.g. cu128)))
	@echo "make install: torch $(TORCH_VERSION), $(TORCH_BUILD) build (TORCH=$(TORCH))"
	$(if $(filter cpu,$(TORCH_BUILD)),$(PYTHON) -m pip install $(PIP_ARGS) $(FIND_TORCH) -c requirements.lock -e ".[$(EXTRAS)]")
	$(if $(filter-out cpu,$(TORCH_BUILD)),grep -v '^torch==' requirements.lock > $(LOCK_WITHOUT_TORCH))
	$(if $(filter-out cpu cuda,$(TORCH_BUILD)),$(PYTHON) -m pip install $(PIP_ARGS) --no-deps \
		--index-url $(TORCH_INDEX)/$(TORCH_BUILD) "torch==$(TORCH_VERSION)+$(TORCH_BUILD)")
	$(if $(filter-out cpu,$(TORCH_BUILD)),$(PYTHON) -m pip install $(PIP_ARGS) -c $(LOCK_WITHOUT_TORCH) \
		"torch$(if $(filter cuda,$(TORCH_BUILD)),===,==)$(TORCH_VERSION)" -e ".[$(EXTRAS)]")

# The newest versions pyproject.toml allows (torch stays the pinned CPU build): to try upgrades.
install-latest:
	$(PYTHON) -m pip install $(FIND_TORCH) torch==$(TORCH_VERSION)
	$(PYTHON) -m pip install -e ".[$(EXTRAS)]"

# Regenerate requirements.lock from pyproject.toml (every extra) after changing dependencies; commit the result.
# Pins already in the lock are kept where they still fit; UPGRADE=1 re-resolves everything to the newest.
lock:
	echo "torch==$(TORCH_VERSION)" | $(PYTHON) -m uv pip compile pyproject.toml - --all-extras --python-version 3.11 \
		$(FIND_TORCH) $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" --quiet -o requirements.lock
	! grep -q '^nvidia-' requirements.lock || (echo "requirements.lock holds CUDA packages: see TORCH_WHEELS" && false)

test:
	$(PYTHON) -m pytest -q

# The edit-run loop: everything but the `slow` tests (those that start subprocesses: dt trainings, sweeps, commands).
test-fast:
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	$(PYTHON) -m ruff check src tests experiments examples
	$(PYTHON) -m ruff format --check src tests experiments examples

train:
	$(PYTHON) -m dt.train env=hopper dataset=medium mode=delayed

# Offline, no shared data: a Pendulum dataset made on the spot, DT and BC trained on it, dt.report's tables.
quickstart:
	PYTHON=$(PYTHON) experiments/quickstart.sh

# One process, one table: training (ours vs Hugging Face's DecisionTransformerModel, `pip install -e ".[bench]"`),
# sampler, evaluation (batched vs sequential vs the env alone), memory, profiles; see BENCHMARKS.md.
# The evaluation policy: CKPT=..., else the newest outputs/**/last.ckpt. Quick look:
# make bench BENCH_ARGS="--episodes 4 --steps 5 --rounds 2 --skip-sequential"
bench:
	$(PYTHON) -m experiments.bench $(if $(CKPT),--ckpt $(CKPT)) $(BENCH_ARGS)

# Atari data layout: bytes per step and sampler speed, frames stored once vs 4 copies (BENCHMARKS.md).
bench-atari:
	$(PYTHON) experiments/bench_atari_data.py
