# `make demo`: set up .venv, then run the main job on embedded toy data.
# `make test`: set up .venv, then run the test suite.
# Setup is incremental: a second run only rebuilds what changed and goes straight on.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -c requirements/constraints.txt
# ninja (parallel C++/CUDA builds) and the venv's tools come first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
MAX_JOBS ?= 2
CUDA_HOME ?= /usr/local/cuda
# nvcc but no GPU (the CI machines): build the CUDA kernels anyway so CI proves they compile and link.
NVCC := $(shell command -v nvcc 2>/dev/null || { test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc; })
EXT_ENV := MAX_JOBS=$(MAX_JOBS) $(if $(NVCC),FORCE_CUDA=1 CUDA_HOME=$(CUDA_HOME))
EXT_SOURCES := setup.py $(shell find csrc -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' 2>/dev/null)
PYTEST_ARGS ?=

.PHONY: test demo setup clean-ext

setup: $(VENV)/.ext

# The pinned stack. mmcv has no wheel on PyPI for this torch: it is built from source once
# (about 8 min on 2 cores) against the installed torch; pip's wheel cache serves later venvs.
$(VENV)/.stack: requirements/constraints.txt requirements/runtime.txt requirements/tests.txt \
		requirements/deploy.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) setuptools wheel ninja numpy
	$(PIP) torch torchvision
	$(PIP) mmengine opencv-python
	MAX_JOBS=$(MAX_JOBS) FORCE_CUDA=0 $(PIP) --no-build-isolation mmcv
	$(PIP) -r requirements/runtime.txt -r requirements/tests.txt -r requirements/deploy.txt
	touch $@

# mmtransnext itself, editable, with its compiled ops (mmtransnext._ext).
$(VENV)/.ext: $(VENV)/.stack $(EXT_SOURCES)
	$(EXT_ENV) $(PIP) --no-build-isolation --no-deps -e .
	touch $@

test: $(VENV)/.ext
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(VENV)/.ext
	$(PY) tools/demo.py

clean-ext:
	rm -rf build mmtransnext/_ext*.so $(VENV)/.ext
