# Each target creates the virtual environment and installs what it needs on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch that lies on these machines' disk; override elsewhere, e.g. TORCH=torch
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vaekit demo -o vaekit-demo

# One worker per core, each with one thread: many tests wait on a process starting or on Python,
# not on the arithmetic (6 min instead of 10.5 on 2 cores)
test: $(STAMP)
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n auto

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) vaekit-demo .pytest_cache
