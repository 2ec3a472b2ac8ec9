# Two commands do everything (each creates the environment if it is absent):
#   make demo   the integral demo on the embedded data
#   make test   the test suite (what CI runs)
VENV ?= $(if $(MMITPN_VENV),$(MMITPN_VENV),.venv)
PY := $(VENV)/bin/python

.PHONY: env demo test
env:
	@bash tools/env/setup_env.sh

demo: env
	$(PY) tools/demo.py

test: env
	$(PY) -m pytest tests
