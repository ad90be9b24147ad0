# Two commands for a fresh machine (Python 3.11, pip, gcc):
#   make demo   set up .venv, then train -> export-all -> serve -> query (scripts/demo.sh)
#   make test   set up .venv, then run the test suite
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.tfship-installed

.PHONY: demo test venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[dev]'
	# kserve's model classes validate deploy/inferenceservice.yaml (tests/serve/test_serve_k8s.py); without
	# its dependencies, which would move protobuf and grpcio-tools off the versions tfship pins.
	$(VENV)/bin/python -m pip install --no-deps 'kserve==0.21.0'
	touch $(STAMP)

demo: $(STAMP)
	VENV=$(VENV) bash scripts/demo.sh

test: $(STAMP)
	$(VENV)/bin/python -m pytest

clean-venv:
	rm -rf $(VENV)
