# `make demo` and `make test` set everything up on a machine with only Python <= 3.11.
VENV ?= .venv
PY := $(VENV)/bin/python
# Chainer 7.8.1 (the last release) needs Python <= 3.11; try the usual names.
PYTHON ?= $(shell for p in python3.11 python3.10 python3.9 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 11)))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: demo test venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-mpi.txt constraints.txt
	@test -n "$(PYTHON)" || { echo "error: need Python 3.8-3.11 (Chainer 7.8.1 does not run on 3.12+); install python3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) demo.py

test: venv
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) demo_output
