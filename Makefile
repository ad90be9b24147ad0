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
	touch $(STAMP)

demo: $(STAMP)
	VENV=$(VENV) bash scripts/demo.sh

test: $(STAMP)
	$(VENV)/bin/python -m pytest

clean-venv:
	rm -rf $(VENV)
