# `make demo`: set up .venv, then run the main job on embedded toy data.
# `make test`: set up .venv, then run the test suite.
# `make test-fast`: the same without the end-to-end tool runs (pytest -m "not e2e").
# `make test-oldest`: the same on the oldest supported stack (.venv-oldest, torch 2.0.1).
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

# The oldest supported stack (requirements/constraints-oldest.txt). Its extension is built
# against torch 2.0 from a copy of the tree (.venv-oldest/src): the in-place mmtransnext/_ext
# of .venv is built against today's torch, and one file cannot serve both ABIs. CPU kernels
# only: the CUDA 11 nvcc of torch 2.0 does not accept this machine's gcc 12.
VENV_OLD := .venv-oldest
PY_OLD := $(abspath $(VENV_OLD))/bin/python
PIP_OLD := $(PY_OLD) -m pip install -c $(abspath requirements/constraints-oldest.txt)
OLD_SRC := $(VENV_OLD)/src
SOURCES := $(shell git ls-files -co --exclude-standard 2>/dev/null)
# What differs between the stacks: ops, models, checkpoints, configs, each tool once.
OLDEST_TESTS ?= tests/test_ops tests/test_models tests/test_configs/test_config_files.py \
	tests/test_configs/test_optim_constructor.py tests/test_registry.py tests/test_compat.py \
	tests/test_checkpoint/test_conversion.py tests/test_checkpoint/test_safe_load.py \
	tests/test_checkpoint/test_strict_load_hook.py tests/test_checkpoint/test_mmengine_contract.py \
	tests/test_cli/test_cfg_options.py tests/test_cli/test_preflight.py \
	tests/test_engine/test_nonfinite_guard.py tests/test_deploy/test_export_guard.py \
	tests/test_tools/test_load_errors.py tests/test_tools/test_resume.py \
	tests/test_tools/test_card_usage.py tests/test_tools/test_seg.py tests/test_tools/test_det.py \
	tests/test_tools/test_cls.py tests/test_tools/test_onnx_export.py \
	tests/test_tools/test_install.py

.PHONY: test test-fast test-oldest demo setup clean-ext

setup: $(VENV)/.ext

# A pinned stack: $(1) the venv, $(2) its pip install with the constraints. mmcv has no
# wheel on PyPI for these torch versions: it is built from source once (about 8-13 min on 2
# cores) against the installed torch; pip's wheel cache serves later venvs.
define install_stack
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(2) setuptools wheel ninja numpy
	$(2) torch torchvision
	$(2) mmengine opencv-python
	MAX_JOBS=$(MAX_JOBS) FORCE_CUDA=0 $(2) --no-build-isolation mmcv
	$(2) -r requirements/runtime.txt -r requirements/tests.txt -r requirements/deploy.txt
	touch $@
endef

$(VENV)/.stack: requirements/constraints.txt requirements/runtime.txt requirements/tests.txt \
		requirements/deploy.txt
	$(call install_stack,$(VENV),$(PIP))

# mmtransnext itself, editable, with its compiled ops (mmtransnext._ext).
$(VENV)/.ext: $(VENV)/.stack $(EXT_SOURCES)
	$(EXT_ENV) $(PIP) --no-build-isolation --no-deps -e .
	touch $@

$(VENV_OLD)/.stack: requirements/constraints-oldest.txt requirements/runtime.txt \
		requirements/tests.txt requirements/deploy.txt
	$(call install_stack,$(VENV_OLD),$(PIP_OLD))

$(VENV_OLD)/.ext: $(VENV_OLD)/.stack $(SOURCES)
	mkdir -p $(OLD_SRC)
	git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C $(OLD_SRC)
	cd $(OLD_SRC) && PATH=$(abspath $(VENV_OLD))/bin:$$PATH MAX_JOBS=$(MAX_JOBS) FORCE_CUDA=0 \
		$(PIP_OLD) --no-build-isolation --no-deps -e .
	touch $@

test: $(VENV)/.ext
	$(PY) -m pytest tests $(PYTEST_ARGS)

# everything but the end-to-end tool runs (marker e2e: tests/test_tools/ and a few others)
test-fast: $(VENV)/.ext
	$(PY) -m pytest tests -m "not e2e" $(PYTEST_ARGS)

test-oldest: $(VENV_OLD)/.ext
	cd $(OLD_SRC) && PATH=$(abspath $(VENV_OLD))/bin:$$PATH $(PY_OLD) -m pytest \
		$(OLDEST_TESTS) $(PYTEST_ARGS)

demo: $(VENV)/.ext
	$(PY) tools/demo.py

clean-ext:
	rm -rf build mmtransnext/_ext*.so $(VENV)/.ext
