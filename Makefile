# The two commands a newcomer types: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of PyTorch, pinned for CI/tests only (the library itself asks torch>=2.3 in an extra).
TORCH_PIN := torch==2.13.0

.PHONY: demo test venv install install-test system-deps lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python

install: venv
	$(BIN)/python -m pip install --quiet -e '.[train]' $(TORCH_PIN)

install-test: venv
	$(BIN)/python -m pip install --quiet -e '.[test,s3,train,notebooks]' $(TORCH_PIN)

# espeak-ng, sox and ffmpeg make real test signals and decode what libsndfile cannot; as root,
# slurm-wlm and munge too: tests/test_slurm.py brings up a one-node SLURM with them (else it skips).
system-deps:
	@PATH="$$PATH:/usr/sbin:/sbin"; root=""; [ "$$(id -u)" = 0 ] && root=1; \
	missing=""; for t in espeak-ng sox ffmpeg; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	packages="$$missing"; \
	if [ -n "$$root" ] && ! { command -v slurmctld && command -v munged; } >/dev/null 2>&1; then packages="$$packages slurm-wlm munge"; fi; \
	if [ -n "$$packages" ]; then \
	  if [ -n "$$root" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$packages"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$packages >/dev/null; \
	  elif [ -n "$$missing" ]; then \
	    echo "missing$$missing: install them (apt-get install espeak-ng sox ffmpeg); tests that need them will fail"; \
	  fi; \
	fi

demo: install
	$(BIN)/audio-pipeline demo demo

LINTED := pipeline tests $(wildcard benchmarks)

lint: install-test
	$(BIN)/ruff check $(LINTED)

typecheck: install-test
	$(BIN)/mypy

pytest: install-test system-deps
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=15

test: install-test system-deps
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=15

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
